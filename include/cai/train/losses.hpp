/// @file train/losses.hpp
/// The training losses of cai, each a `*_forward` / `*_backward` pair over plain buffers on the CPU
/// backend (tag first, backward accumulates), checked against PyTorch transcriptions of TRL's formulas:
///  - train/losses/token.hpp:      token_logprob_*, token_entropy_* (per-token log-probability and entropy);
///  - train/losses/preference.hpp: preference_loss_* (Bradley-Terry with soft targets; Bai et al. 2022);
///  - train/losses/dpo.hpp:        dpo_loss_* (DPO, cDPO, IPO; Rafailov et al. 2023, Azar et al. 2023);
///  - train/losses/ppo.hpp:        ppo_policy_loss_*, ppo_value_loss_*, kl_penalty, gae_advantages, whiten
///                                 (Schulman et al. 2017, 2016; Ziegler et al. 2019).
/// docs/training.md ("Losses") gives every formula.
#pragma once

#include "cai/train/losses/dpo.hpp"
#include "cai/train/losses/ppo.hpp"
#include "cai/train/losses/preference.hpp"
#include "cai/train/losses/token.hpp"
