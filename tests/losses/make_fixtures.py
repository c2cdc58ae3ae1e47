#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures that tests/losses/test_*.cpp compare cai's training losses with
(include/cai/train/losses/*.hpp). Each loss is written out in torch following TRL's code (trl is not
imported): RewardTrainer.compute_loss, DPOTrainer.dpo_loss, PPOTrainer's policy/value losses, KL penalty
and GAE loop, and trl.core's masked_mean / masked_var / masked_whiten. Values come from torch, gradients
from autograd.

Usage: make_fixtures.py [OUT_DIR]   (default: tests/data/losses next to this script's tests/)

OUT_DIR receives one JSON file per loss: {"description": ..., "cases": [case, ...]}; every tensor is a
flat list (row-major), every case holds its inputs, its hyper-parameters, the forward outputs and the
gradients of (upstream * output) with respect to the differentiable inputs. Inputs are drawn with numpy
from fixed seeds and rounded to float32, so that cai's float and double kernels read exactly the same
numbers; the references are computed in float64.
Exits 77 when torch or numpy cannot be imported (CTest's skip code for the live check).
"""
import json
import math
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the live check is skipped, not failed, without torch
    print(f"skipping: {e}", file=sys.stderr)
    sys.exit(77)

torch.set_default_dtype(torch.float64)


def f32(a):
    """numpy array -> float64 torch tensor holding float32-representable values."""
    return torch.tensor(np.asarray(a, dtype=np.float32).astype(np.float64))


def leaf(a):
    return f32(a).requires_grad_(True)


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


# --- trl.core / trl.trainer.utils, written out ---------------------------------------------------------
def masked_mean(values, mask):
    return (values * mask).sum() / mask.sum()


def masked_var(values, mask, unbiased=True):
    mean = masked_mean(values, mask)
    centered = values - mean
    variance = masked_mean(centered**2, mask)
    if unbiased:
        mask_sum = mask.sum()
        if mask_sum <= 1:
            raise ValueError("mask sum must exceed 1")
        variance = variance * (mask_sum / (mask_sum - 1))
    return variance


def masked_whiten(values, mask, shift_mean=True):
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened += mean
    return whitened


# --- fixtures --------------------------------------------------------------------------------------------
def token_logprob(rng):
    N, V = 9, 7
    logits = leaf(rng.normal(0, 2, (N, V)))
    targets = rng.integers(0, V, N).astype(np.int32)
    targets[2] = -1
    targets[6] = -100
    t = torch.tensor(targets.astype(np.int64))
    w = f32(rng.normal(0, 1, N))
    # TRL's selective_log_softmax: gather minus logsumexp; masked rows are 0 (the mask multiplies later)
    lse = torch.logsumexp(logits, dim=-1)
    gathered = torch.gather(logits, -1, t.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    logp = torch.where(t < 0, torch.zeros_like(lse), gathered - lse)
    (logp * w).sum().backward()
    return {"description": "per-token log-probability of the targets (TRL selective_log_softmax); "
                           "negative targets masked; dlogits = d(sum(dlogp * logp))/dlogits",
            "cases": [{"N": N, "V": V, "logits": flat(logits), "targets": [int(x) for x in targets],
                       "dlogp": flat(w), "logp": flat(logp), "lse": flat(lse), "dlogits": flat(logits.grad)}]}


def token_entropy(rng):
    N, V = 6, 11
    raw = rng.normal(0, 3, (N, V))
    raw[4] *= 10.0  # a nearly one-hot row
    logits = leaf(raw)
    w = f32(rng.normal(0, 1, N))
    # TRL's entropy_from_logits
    pd = torch.softmax(logits, dim=-1)
    entropy = torch.logsumexp(logits, dim=-1) - torch.sum(pd * logits, dim=-1)
    (entropy * w).sum().backward()
    return {"description": "per-token entropy of the softmax (TRL entropy_from_logits); "
                           "dlogits = d(sum(dentropy * entropy))/dlogits",
            "cases": [{"N": N, "V": V, "logits": flat(logits), "dentropy": flat(w), "entropy": flat(entropy),
                       "dlogits": flat(logits.grad)}]}


def preference_loss(rng):
    cases = []
    for name, n, margin, soft, dloss in [("hard labels without margin", 12, 0.0, False, 1.0),
                                         ("hard labels with margin", 12, 0.5, False, 0.7),
                                         ("soft labels without margin", 16, 0.0, True, 1.0),
                                         ("soft labels with margin", 16, 0.3, True, 1.9)]:
        margin, dloss = float(np.float32(margin)), float(np.float32(dloss))  # exact in cai's float T
        a, b = leaf(rng.normal(0, 2, n)), leaf(rng.normal(0, 2, n))
        if soft:
            p = rng.uniform(0, 1, n)
            p[0], p[1], p[2] = 0.0, 1.0, 0.5
        else:
            p = np.ones(n)
        p = f32(p)
        if soft:  # the symmetric margin: whichever response is preferred must win by the margin
            losses = -(p * F.logsigmoid(a - b - margin) + (1 - p) * F.logsigmoid(b - a - margin))
        else:  # TRL RewardTrainer.compute_loss
            losses = -F.logsigmoid(a - b - margin)
        loss = losses.mean()
        (dloss * loss).backward()
        cases.append({"name": name, "n": n, "margin": margin, "dloss": dloss, "reward_a": flat(a),
                      "reward_b": flat(b), "p_a": flat(p), "loss": float(loss.detach()), "dreward_a": flat(a.grad),
                      "dreward_b": flat(b.grad)})
    return {"description": "Bradley-Terry preference loss with soft targets p_a and a symmetric margin; "
                           "hard-label cases use TRL RewardTrainer's -logsigmoid(r_c - r_r - margin).mean()",
            "cases": cases}


def dpo(rng):
    cases = []
    for name, variant, beta, eps, scale, dloss in [("sigmoid", "sigmoid", 0.1, 0.0, 30.0, 1.0),
                                                   ("sigmoid with label smoothing", "sigmoid", 0.5, 0.2, 8.0, 0.6),
                                                   ("ipo", "ipo", 0.1, 0.0, 1.5, 1.0),
                                                   ("ipo large beta", "ipo", 2.0, 0.0, 1.5, 2.5)]:
        n = 10
        dloss = float(np.float32(dloss))  # exact in cai's float T
        base_c, base_r = -scale * rng.uniform(0.2, 1.0, n), -scale * rng.uniform(0.2, 1.0, n)
        pc = leaf(base_c + rng.normal(0, 0.1 * scale, n))
        pr = leaf(base_r + rng.normal(0, 0.1 * scale, n))
        rc, rr = f32(base_c), f32(base_r)
        # TRL DPOTrainer.dpo_loss
        logratios = pc - pr
        ref_logratios = rc - rr
        logits = logratios - ref_logratios
        if variant == "sigmoid":
            losses = (-F.logsigmoid(beta * logits) * (1 - eps) - F.logsigmoid(-beta * logits) * eps)
        else:
            losses = (logits - 1 / (2 * beta)) ** 2
        chosen_rewards = beta * (pc - rc).detach()
        rejected_rewards = beta * (pr - rr).detach()
        loss = losses.mean()
        (dloss * loss).backward()
        cases.append({"name": name, "variant": variant, "beta": beta, "label_smoothing": eps, "n": n,
                      "dloss": dloss, "policy_chosen": flat(pc), "policy_rejected": flat(pr),
                      "ref_chosen": flat(rc), "ref_rejected": flat(rr), "loss": float(loss.detach()),
                      "chosen_rewards": flat(chosen_rewards), "rejected_rewards": flat(rejected_rewards),
                      "dpolicy_chosen": flat(pc.grad), "dpolicy_rejected": flat(pr.grad)})
    return {"description": "DPO / cDPO / IPO losses (TRL DPOTrainer.dpo_loss) with implicit rewards",
            "cases": cases}


def away_from(x, points, gap):
    """Moves entries of x that lie within gap of any point away from it (keeps checks off the kinks)."""
    x = x.copy()
    for p in points:
        close = np.abs(x - p) < gap
        x[close] = p + np.where(x[close] >= p, gap, -gap)
    return x


def ppo_policy(rng):
    cases = []
    for name, N, clip, dloss in [("clip 0.2", 24, 0.2, 1.0), ("clip 0.1", 20, 0.1, 0.5)]:
        dloss = float(np.float32(dloss))
        old = rng.normal(-2, 1, N).astype(np.float32).astype(np.float64)
        diff = away_from(rng.normal(0, 0.25, N), [math.log(1 - clip), math.log(1 + clip)], 1e-3)
        logp = leaf(old + diff)
        old_t = f32(old)
        adv = rng.normal(0, 1, N)
        mask = np.ones(N)
        mask[-3:] = 0.0
        mask[5] = 0.0
        adv_t, mask_t = f32(adv), f32(mask)
        # TRL PPOTrainer
        logprobs_diff = logp - old_t
        ratio = torch.exp(logprobs_diff)
        pg_losses = -adv_t * ratio
        pg_losses2 = -adv_t * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
        pg_loss_max = torch.max(pg_losses, pg_losses2)
        pg_loss = masked_mean(pg_loss_max, mask_t)
        pg_clipfrac = masked_mean((pg_losses2 > pg_losses).double(), mask_t)
        approxkl = masked_mean(0.5 * logprobs_diff**2, mask_t)
        (dloss * pg_loss).backward()
        cases.append({"name": name, "N": N, "clip_range": clip, "dloss": dloss, "logp": flat(logp),
                      "old_logp": flat(old_t), "advantages": flat(adv_t), "mask": flat(mask_t),
                      "loss": float(pg_loss.detach()), "clip_fraction": float(pg_clipfrac), "approx_kl": float(approxkl.detach()),
                      "dlogp": flat(logp.grad)})
    return {"description": "PPO clipped policy loss, clip fraction and approx KL over masked tokens "
                           "(TRL PPOTrainer, masked_mean)", "cases": cases}


def ppo_value(rng):
    cases = []
    for name, N, clip, dloss in [("clip 0.2", 24, 0.2, 1.0), ("clip 0.5", 16, 0.5, 1.5)]:
        dloss = float(np.float32(dloss))
        old = rng.normal(0, 1, N).astype(np.float32).astype(np.float64)
        d = away_from(rng.normal(0, 0.4, N), [-clip, clip], 1e-3)
        values = leaf(old + d)
        old_t = f32(old)
        returns = f32(old + rng.normal(0, 0.6, N))
        mask = np.ones(N)
        mask[-2:] = 0.0
        mask[3] = 0.0
        mask_t = f32(mask)
        # TRL PPOTrainer
        vpredclipped = torch.clamp(values, old_t - clip, old_t + clip)
        vf_losses1 = torch.square(values - returns)
        vf_losses2 = torch.square(vpredclipped - returns)
        vf_loss_max = torch.max(vf_losses1, vf_losses2)
        vf_loss = 0.5 * masked_mean(vf_loss_max, mask_t)
        (dloss * vf_loss).backward()
        cases.append({"name": name, "N": N, "clip_range_value": clip, "dloss": dloss, "values": flat(values),
                      "old_values": flat(old_t), "returns": flat(returns), "mask": flat(mask_t),
                      "loss": float(vf_loss.detach()), "dvalues": flat(values.grad)})
    return {"description": "PPO clipped value loss over masked tokens (TRL PPOTrainer)", "cases": cases}


def kl_penalty(rng):
    N = 20
    logp = f32(rng.normal(-2, 1, N))
    ref = f32(logp.numpy() + rng.normal(0, 0.5, N))
    logr = ref - logp  # TRL PPOTrainer
    k1 = -logr
    k3 = (logr.exp() - 1) - logr
    return {"description": "per-token KL penalty estimators k1 and k3 (TRL PPOTrainer)",
            "cases": [{"N": N, "logp": flat(logp), "ref_logp": flat(ref), "k1": flat(k1), "k3": flat(k3)}]}


def gae(rng):
    cases = []
    for name, Tn, gamma, lam in [("trl defaults", 12, 1.0, 0.95), ("discounted", 10, 0.9, 0.8),
                                 ("monte carlo", 8, 1.0, 1.0)]:
        rewards = f32(rng.normal(0, 0.1, Tn))
        rewards[-1] += 1.5
        rewards = f32(rewards.numpy())
        values = f32(rng.normal(0, 1, Tn))
        # TRL PPOTrainer's GAE loop, for one sequence
        lastgaelam = 0
        advantages_reversed = []
        for t in reversed(range(Tn)):
            nextvalues = values[t + 1] if t < Tn - 1 else 0.0
            delta = rewards[t] + gamma * nextvalues - values[t]
            lastgaelam = delta + gamma * lam * lastgaelam
            advantages_reversed.append(lastgaelam)
        advantages = torch.stack(advantages_reversed[::-1])
        returns = advantages + values
        cases.append({"name": name, "Tn": Tn, "gamma": gamma, "lambda": lam, "rewards": flat(rewards),
                      "values": flat(values), "advantages": flat(advantages), "returns": flat(returns)})
    return {"description": "generalised advantage estimation over one sequence (TRL PPOTrainer)",
            "cases": cases}


def whiten(rng):
    cases = []
    for name, shift in [("shift mean", True), ("keep mean", False)]:
        N = 18
        x = f32(rng.normal(1.5, 2.0, N))
        mask = np.ones(N)
        mask[-4:] = 0.0
        mask[7] = 0.0
        mask_t = f32(mask)
        out = masked_whiten(x, mask_t, shift_mean=shift)
        cases.append({"name": name, "N": N, "shift_mean": shift, "x": flat(x), "mask": flat(mask_t),
                      "whitened": flat(out)})
    return {"description": "masked whitening with the unbiased variance (trl.core.masked_whiten)",
            "cases": cases}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "data", "losses")
    os.makedirs(out, exist_ok=True)
    makers = [token_logprob, token_entropy, preference_loss, dpo, ppo_policy, ppo_value, kl_penalty, gae, whiten]
    for seed, make in enumerate(makers, start=1):
        data = make(np.random.default_rng(seed))
        data["generator"] = f"tests/losses/make_fixtures.py, torch {torch.__version__}, numpy seed {seed}"
        with open(os.path.join(out, make.__name__ + ".json"), "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
    print(f"wrote {len(makers)} fixtures to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
