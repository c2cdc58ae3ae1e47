/// @file fwd.hpp
/// Forward declarations of cai's public class templates and classes. Declarations only: no includes, no
/// definitions (Eigen's and xtensor's `fwd` discipline), so that a header can name a type cheaply.
#pragma once

namespace cai {

struct cpu_t;

struct message;
struct exchange;
struct critique_step;
struct revision_trace;
struct critique_example;
struct comparison;
struct preference;
struct generation_options;
struct generation_request;
struct scoring_request;

struct constitutional_principle;

struct constitution;

class rng;

template <class Model>
class self_critic;
template <class PolicyModel, class CritiqueModel>
class separate_critic;
template <class Critic, unsigned Rounds>
class multi_turn;
template <class Critic, class Judge, unsigned MaxRounds>
class until_satisfied;
template <class ScoringModel>
class critique_judge;
class keyword_judge;

struct sgd;
struct adamw;
struct constant_schedule;
struct linear_decay;
struct cosine_decay;

template <class Backend>
class full_parameters;
template <class Backend>
class lora_adapters;
struct train_options;
struct train_result;
struct train_progress;
class progress_bar;
struct checkpoint;
template <class Backend>
class preference_model;

template <class ScoringModel>
class choice_ranker;

template <class... A>
struct artefacts;

}  // namespace cai
