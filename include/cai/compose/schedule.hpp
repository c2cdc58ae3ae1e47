/// @file compose/schedule.hpp
/// `schedule<Stages...>`: a training programme as a compile-time list of stages (Bai et al. 2022,
/// arXiv:2212.08073: SL-CAI then RL-CAI; hybrids with human feedback). Each stage declares, as types,
/// the artefacts it needs and those it provides:
///
///     struct my_stage {
///       static constexpr std::string_view name = "my-stage";
///       using needs = cai::artefacts<cai::artefact::policy, cai::artefact::red_team_prompts>;
///       using provides = cai::artefacts<cai::artefact::policy>;
///       cai::artefact_paths run(cai::stage_context& context, const std::filesystem::path& dir);
///     };
///
/// A schedule whose stage needs an artefact that no earlier stage provides does not compile; the error
/// names the stage and the artefact: "stage_needs_an_artefact_that_no_earlier_stage_provides<Stage,
/// Artefact>". `inputs<...>` is the stage that takes the user's files (a base policy, prompts, human
/// preferences) from the context.
///
/// At run time each stage works in its own directory under the context's output directory
/// (`<index>-<name>/`), writes its artefacts there as it goes, and records them in `done.json` when it
/// finishes; a schedule run again skips the finished stages (reading their artefacts from `done.json`)
/// and resumes an unfinished one (stages resume their own work: the SL-CAI engine its JSONL file, the
/// trainers their checkpoints).
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cai/error.hpp"

namespace cai {

/// A compile-time list of artefact tags.
template <class... A>
struct artefacts {};

/// The artefacts that stages pass to each other: each a tag with the name under which its path is kept.
namespace artefact {
/// A policy: a Hugging Face directory (config.json, model.safetensors, tokenizer.json).
struct policy {
  static constexpr std::string_view name = "policy";
};
/// A preference model: a directory written by `preference_model::save`.
struct preference_model {
  static constexpr std::string_view name = "preference_model";
};
/// Red-team prompts: JSONL, one {"prompt": "..."} per line.
struct red_team_prompts {
  static constexpr std::string_view name = "red_team_prompts";
};
/// Helpful prompts: JSONL, one {"prompt": "..."} per line.
struct helpful_prompts {
  static constexpr std::string_view name = "helpful_prompts";
};
/// SL-CAI revision records: JSONL of `revision_trace`.
struct revisions {
  static constexpr std::string_view name = "revisions";
};
/// Human preference labels: TRL preference JSONL (data/preferences.hpp).
struct human_preferences {
  static constexpr std::string_view name = "human_preferences";
};
/// AI preference labels: TRL preference JSONL with p_chosen and principle.
struct ai_preferences {
  static constexpr std::string_view name = "ai_preferences";
};
/// Human-labelled edge cases: TRL preference JSONL (the preferred response is the one to learn).
struct edge_cases {
  static constexpr std::string_view name = "edge_cases";
};
}  // namespace artefact

/// Paths of artefacts by name.
using artefact_paths = std::map<std::string, std::filesystem::path, std::less<>>;

/// What every stage of a run shares: the output directory, the artefacts so far, the run's seed, a log.
struct stage_context {
  std::filesystem::path out;
  artefact_paths artefacts;
  std::uint64_t seed = 0;
  std::function<void(std::string_view)> log = [](std::string_view) {};

  /// The path of artefact `A`. @throws validation_error naming it when no stage has provided it.
  template <class A>
  [[nodiscard]] const std::filesystem::path& path() const {
    auto it = artefacts.find(A::name);
    if (it == artefacts.end())
      throw validation_error("stage_context: no artefact '" + std::string(A::name) + "' has been provided");
    return it->second;
  }
  template <class A>
  [[nodiscard]] bool has() const {
    return artefacts.find(A::name) != artefacts.end();
  }
};

namespace detail {

template <class List, class A>
struct list_contains;
template <class... L, class A>
struct list_contains<artefacts<L...>, A> : std::bool_constant<(std::is_same_v<L, A> || ...)> {};

template <class L1, class L2>
struct list_concat;
template <class... A, class... B>
struct list_concat<artefacts<A...>, artefacts<B...>> {
  using type = artefacts<A..., B...>;
};

template <class T>
inline constexpr bool dependent_false = false;

}  // namespace detail

/// Instantiated, and failing, when `Stage` needs `Artefact` and no earlier stage of its schedule
/// provides it: the compiler's message names both.
template <class Stage, class Artefact, bool Provided>
struct stage_needs_an_artefact_that_no_earlier_stage_provides : std::true_type {};
template <class Stage, class Artefact>
struct stage_needs_an_artefact_that_no_earlier_stage_provides<Stage, Artefact, false> : std::false_type {
  static_assert(detail::dependent_false<Stage>,
                "cai::schedule: a stage needs an artefact that no earlier stage provides; the stage and the "
                "artefact are the first two template arguments of "
                "stage_needs_an_artefact_that_no_earlier_stage_provides in this instantiation");
};

namespace detail {

template <class Available, class Stage, class Needs>
struct check_needs;
template <class Available, class Stage, class... N>
struct check_needs<Available, Stage, artefacts<N...>>
    : std::bool_constant<(stage_needs_an_artefact_that_no_earlier_stage_provides<
                              Stage, N, list_contains<Available, N>::value>::value &&
                          ...)> {};

template <class Available, class... Stages>
struct check_schedule : std::true_type {};
template <class Available, class Stage, class... Rest>
struct check_schedule<Available, Stage, Rest...>
    : std::bool_constant<check_needs<Available, Stage, typename Stage::needs>::value &&
                         check_schedule<typename list_concat<Available, typename Stage::provides>::type,
                                        Rest...>::value> {};

template <class List>
struct artefact_names;
template <class... A>
struct artefact_names<artefacts<A...>> {
  static std::vector<std::string> get() { return {std::string(A::name)...}; }
};

}  // namespace detail

/// A stage: a name, the artefacts it needs and provides, and `run(context, dir)` returning the paths
/// of what it provides.
template <class S>
concept stage = requires(S& s, stage_context& c, const std::filesystem::path& dir) {
  { S::name } -> std::convertible_to<std::string_view>;
  typename S::needs;
  typename S::provides;
  { s.run(c, dir) } -> std::same_as<artefact_paths>;
};

/// The user's files as artefacts: a stage with no needs that provides `A...` from the paths given to
/// its constructor (checked to exist).
template <class... A>
struct inputs {
  static constexpr std::string_view name = "inputs";
  using needs = artefacts<>;
  using provides = artefacts<A...>;
  artefact_paths given;

  artefact_paths run(stage_context&, const std::filesystem::path&) {
    artefact_paths out;
    auto take = [&](std::string_view n) {
      auto it = given.find(n);
      if (it == given.end()) throw config_error("inputs: no path was given for the artefact '" + std::string(n) + "'");
      if (!std::filesystem::exists(it->second))
        throw io_error(it->second.string(), "the input artefact '" + std::string(n) + "' does not exist");
      out[std::string(n)] = it->second;
    };
    (take(A::name), ...);
    return out;
  }
};

/// Stages run in order (see the file comment). Compiles only when every stage's needs are met by the
/// stages before it.
template <stage... Stages>
class schedule {
  static_assert(detail::check_schedule<artefacts<>, Stages...>::value,
                "cai::schedule: a stage needs an artefact that no earlier stage provides");

 public:
  explicit schedule(Stages... stages) : stages_(std::move(stages)...) {}

  /// The stages, for setting their options.
  template <std::size_t I>
  [[nodiscard]] auto& stage() noexcept {
    return std::get<I>(stages_);
  }

  /// Runs every stage not already finished in `context.out`; afterwards `context.artefacts` holds the
  /// latest path of every artefact. @return the names of the stages that ran (not skipped).
  std::vector<std::string> run(stage_context& context) {
    std::vector<std::string> ran;
    std::error_code ec;
    std::filesystem::create_directories(context.out, ec);
    if (ec) throw io_error(context.out.string(), "cannot create the output directory: " + ec.message());
    run_from<0>(context, ran);
    return ran;
  }

 private:
  template <std::size_t I>
  void run_from(stage_context& context, std::vector<std::string>& ran) {
    if constexpr (I < sizeof...(Stages)) {
      auto& s = std::get<I>(stages_);
      using S = std::remove_cvref_t<decltype(s)>;
      const std::filesystem::path dir = context.out / (std::to_string(I) + "-" + std::string(S::name));
      const std::filesystem::path done = dir / "done.json";
      artefact_paths provided;
      if (std::filesystem::exists(done)) {
        std::ifstream in(done);
        const auto j = nlohmann::json::parse(in, nullptr, false);
        if (j.is_discarded() || !j.contains("artefacts"))
          throw validation_error(done.string() + ": not a stage record; delete it to rerun the stage");
        for (const auto& item : j["artefacts"].items()) provided[item.key()] = item.value().template get<std::string>();
        context.log(std::string(S::name) + ": finished before, skipped");
      } else {
        std::filesystem::create_directories(dir);
        context.log(std::string(S::name) + ": running");
        provided = s.run(context, dir);
        for (const auto& n : detail::artefact_names<typename S::provides>::get())
          if (provided.find(n) == provided.end())
            throw error("cai::schedule: stage '" + std::string(S::name) + "' did not provide its artefact '" + n + "'");
        nlohmann::json j;
        j["stage"] = S::name;
        for (const auto& [k, v] : provided) j["artefacts"][k] = v.string();
        std::ofstream out(done.string() + ".tmp", std::ios::trunc);
        out << j.dump(2) << '\n';
        out.close();
        std::filesystem::rename(done.string() + ".tmp", done);
        ran.emplace_back(S::name);
      }
      for (const auto& [k, v] : provided) context.artefacts[k] = v;
      run_from<I + 1>(context, ran);
    }
  }

  std::tuple<Stages...> stages_;
};

}  // namespace cai
