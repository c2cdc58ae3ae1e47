/// @file feedback.hpp
/// AI feedback (RLAIF; Bai et al. 2022, arXiv:2212.08073, section 4): everything under `cai/feedback/`.
/// The multiple-choice ranker and its chain-of-thought variant, clamping, order-swap debiasing,
/// ensembles with vote policies, the critique-side ensemble, principle draws and labelling, and the
/// sampling of response pairs. Preference data on disk lives in `cai/data/preferences.hpp`.
#pragma once

#include "cai/feedback/choice_ranker.hpp"
#include "cai/feedback/cot_ranker.hpp"
#include "cai/feedback/clamped.hpp"
#include "cai/feedback/debiased.hpp"
#include "cai/feedback/ensemble.hpp"
#include "cai/feedback/critic_ensemble.hpp"
#include "cai/feedback/labeling.hpp"
#include "cai/feedback/pairs.hpp"
