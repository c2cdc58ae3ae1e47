/// @file eval.hpp
/// Evaluation of Constitutional AI (Bai et al. 2022, arXiv:2212.08073): everything under `cai/eval/`.
/// Pairwise tournaments between snapshots judged by any ranker, with win rates, Elo and Bradley-Terry
/// ratings; harmlessness, helpfulness, evasiveness and disrespect rates from a judge callback;
/// reliability data of predicted probabilities; the JSON report and its SVG plots; and the audit of a
/// constitution (principle disagreement, label entropy, coverage gaps, refusals of revised outputs).
#pragma once

#include "cai/eval/win_rate.hpp"
#include "cai/eval/rates.hpp"
#include "cai/eval/calibration.hpp"
#include "cai/eval/report.hpp"
#include "cai/eval/audit.hpp"
