"""PyTorch peer of benchmarks/bench_training.cpp: the same training steps (SFT, preference model, DPO, PPO)
on the same GPT-2-style model (plain torch: tanh GELU, tied head, LayerNorm eps 1e-5, the transformer
benchmark's module), loaded from the model.safetensors and score.safetensors that cai wrote (GPT-2
Conv1D weights are stored (in, out) and transposed into nn.Linear's (out, in)), on the same token ids.

    python bench_training_peer.py WORKLOAD WEIGHTS_DIR THREADS [STEPS = 2]     WORKLOAD: sft | pm | dpo | ppo

Each step is written as a PyTorch user (or TRL) would write it: torch.optim.AdamW(lr 1e-3, betas 0.9 /
0.999, eps 1e-8, weight decay 0.01, fused=True: PyTorch's fastest AdamW on the CPU) after
clip_grad_norm_(1.0), as cai's trainers do (train_options.max_grad_norm = 1). Log-probabilities are taken
over the response positions only (cross_entropy with reduction="none"), rewards and values at the positions
that need them. Configured as the transformer benchmark's peer: denormals flushed to zero,
torch.set_num_threads(THREADS), one inter-op thread. Runs 1 + STEPS steps, drops the first (warm-up), prints
one JSON line with the median seconds of a step (and, for PPO, of generation, scoring and training),
peak_mib (ru_maxrss) and the losses of the first two steps. If torch (or safetensors) cannot be imported it
prints {"missing": ...}.
"""
import json
import os
import resource
import statistics
import sys
import time

from bench_common import configure_torch, token

VOCAB, CONTEXT, D_MODEL, LAYERS, HEADS = 8192, 256, 256, 6, 8
BATCH, SEQ, PROMPT = 8, 256, 64
RESPONSE = SEQ - PROMPT
PPO_PROMPT, PPO_NEW, PPO_EPOCHS, PPO_MINIBATCHES = 64, 64, 2, 2
LR, MAX_GRAD_NORM = 1e-3, 1.0
DPO_BETA = 0.1
PPO_CLIP, PPO_CLIP_VALUE, VF_COEF, KL_COEF, GAMMA, LAMBDA = 0.2, 0.2, 0.1, 0.05, 1.0, 0.95


def tokens(start, n, salt):
    return [token(start + t, salt, VOCAB) for t in range(n)]


def main():
    workload, weights_dir, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    try:
        import numpy as np
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        from safetensors.numpy import load_file
    except ImportError as e:
        print(json.dumps({"missing": str(e)}))
        return 0

    configure_torch(torch, threads)
    C, H, D = D_MODEL, HEADS, D_MODEL // HEADS

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(C, eps=1e-5)
            self.c_attn = nn.Linear(C, 3 * C)
            self.attn_proj = nn.Linear(C, C)
            self.ln_2 = nn.LayerNorm(C, eps=1e-5)
            self.c_fc = nn.Linear(C, 4 * C)
            self.mlp_proj = nn.Linear(4 * C, C)

        def forward(self, x, cache=None, pos=0):
            B, T, _ = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
            if cache is None:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                kc, vc = cache
                kc[:, :, pos:pos + T] = k
                vc[:, :, pos:pos + T] = v
                # prefill (pos 0) is causal; a decode step of one token sees the whole cache
                y = F.scaled_dot_product_attention(q, kc[:, :, :pos + T], vc[:, :, :pos + T], is_causal=pos == 0 and T > 1)
            x = x + self.attn_proj(y.transpose(1, 2).reshape(B, T, C))
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(VOCAB, C)
            self.wpe = nn.Embedding(CONTEXT, C)
            self.h = nn.ModuleList(Block() for _ in range(LAYERS))
            self.ln_f = nn.LayerNorm(C, eps=1e-5)

        def hidden(self, ids, caches=None, pos=0):
            T = ids.shape[1]
            x = self.wte(ids) + self.wpe(torch.arange(pos, pos + T))
            for i, block in enumerate(self.h):
                x = block(x, None if caches is None else caches[i], pos)
            return self.ln_f(x)  # (B, T, C)

        def forward(self, ids, caches=None, pos=0):
            h = self.hidden(ids, caches, pos)
            return h, h @ self.wte.weight.t()  # tied head: logits (B, T, V)

    weights = load_file(os.path.join(weights_dir, "model.safetensors"))

    def load_gpt():
        model = GPT()
        sd = {}
        for name, arr in weights.items():
            t = torch.from_numpy(np.ascontiguousarray(arr))
            if name.endswith(".weight") and any(s in name for s in ("c_attn", "c_proj", "c_fc")):
                t = t.t().contiguous()  # Conv1D (in, out) -> Linear (out, in)
            name = name.replace("attn.c_attn", "c_attn").replace("attn.c_proj", "attn_proj")
            name = name.replace("mlp.c_fc", "c_fc").replace("mlp.c_proj", "mlp_proj")
            sd[name] = t
        model.load_state_dict(sd, strict=True)
        return model

    def adamw(params):
        try:
            return torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, foreach=True)

    def response_logprobs(logits, ids, start, length):
        # log P(ids[:, start + 1 + k] | ...) for k < length: logits (B, T, V), ids (B, T) -> (B, length)
        lg = logits[:, start:start + length]
        tg = ids[:, start + 1:start + 1 + length]
        return -F.cross_entropy(lg.reshape(-1, VOCAB), tg.reshape(-1), reduction="none").view(tg.shape)

    result = {"version": torch.__version__}
    times, losses = [], []
    if workload == "sft":
        model = load_gpt()
        params = list(model.parameters())
        opt = adamw(params)
        ids = torch.tensor([tokens(b * SEQ, SEQ, 11) for b in range(BATCH)])
        targets = torch.full_like(ids, -1)
        targets[:, PROMPT - 1:SEQ - 1] = ids[:, PROMPT:]  # the response tokens only
        for i in range(1 + steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            _, logits = model(ids)
            loss = F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1), ignore_index=-1)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            opt.step()
            losses.append(loss.item())
            if i > 0:
                times.append(time.perf_counter() - t0)
        result["items"] = BATCH * SEQ
    elif workload == "pm":
        body = load_gpt()
        head = nn.Parameter(torch.from_numpy(np.ascontiguousarray(
            load_file(os.path.join(weights_dir, "score.safetensors"))["score.weight"])).view(C).clone())
        params = list(body.parameters()) + [head]
        opt = adamw(params)
        chosen = [tokens(b * 2 * SEQ, SEQ, 22) for b in range(BATCH)]
        rejected = [tokens((b * 2 + 1) * SEQ, SEQ, 22) for b in range(BATCH)]
        ids = torch.tensor(chosen + rejected)  # one forward over the 16 rows, as cai's trainer
        p = torch.ones(BATCH)
        for i in range(1 + steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            r = body.hidden(ids)[:, -1] @ head  # (2B): the reward at the last token
            d = r[:BATCH] - r[BATCH:]
            loss = -(p * F.logsigmoid(d) + (1 - p) * F.logsigmoid(-d)).mean()  # Bradley-Terry
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            opt.step()
            losses.append(loss.item())
            if i > 0:
                times.append(time.perf_counter() - t0)
        result["items"] = BATCH
    elif workload == "dpo":
        model, reference = load_gpt(), load_gpt()
        params = list(model.parameters())
        opt = adamw(params)
        prompts = [tokens(b * 3 * SEQ, PROMPT, 33) for b in range(BATCH)]
        chosen = [tokens(b * 3 * SEQ + SEQ, RESPONSE, 33) for b in range(BATCH)]
        rejected = [tokens(b * 3 * SEQ + 2 * SEQ, RESPONSE, 33) for b in range(BATCH)]
        ids = torch.tensor([prompts[b] + chosen[b] for b in range(BATCH)] + [prompts[b] + rejected[b] for b in range(BATCH)])
        with torch.no_grad():  # the frozen reference, once before training (not timed), as cai's trainer
            ref = response_logprobs(reference(ids)[1], ids, PROMPT - 1, RESPONSE).sum(-1)
        for i in range(1 + steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            _, logits = model(ids)
            pol = response_logprobs(logits, ids, PROMPT - 1, RESPONSE).sum(-1)  # (2B)
            h = (pol[:BATCH] - pol[BATCH:]) - (ref[:BATCH] - ref[BATCH:])
            loss = -F.logsigmoid(DPO_BETA * h).mean()  # sigmoid DPO, no label smoothing
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            opt.step()
            losses.append(loss.item())
            if i > 0:
                times.append(time.perf_counter() - t0)
        result["items"] = BATCH
    elif workload == "ppo":
        policy, reference, pm_body = load_gpt(), load_gpt(), load_gpt()
        pm_head = torch.from_numpy(np.ascontiguousarray(
            load_file(os.path.join(weights_dir, "score.safetensors"))["score.weight"])).view(C).clone()
        value_head = nn.Parameter(torch.zeros(C))
        params = list(policy.parameters()) + [value_head]
        opt = adamw(params)
        prompts = torch.tensor([tokens(b * PPO_PROMPT, PPO_PROMPT, 44) for b in range(BATCH)])
        P, R = PPO_PROMPT, PPO_NEW
        gen_t, score_t, train_t = [], [], []
        for i in range(1 + steps):
            t0 = time.perf_counter()
            # 1. generation: KV-cached sampling at temperature 1
            with torch.no_grad():
                caches = [(torch.zeros(BATCH, H, P + R, D), torch.zeros(BATCH, H, P + R, D)) for _ in range(LAYERS)]
                _, logits = policy(prompts, caches, 0)
                last = logits[:, -1]
                out = []
                for k in range(R):
                    nxt = torch.multinomial(torch.softmax(last, -1), 1)  # (B, 1)
                    out.append(nxt)
                    if k + 1 < R:
                        _, logits = policy(nxt, caches, P + k)
                        last = logits[:, -1]
                seqs = torch.cat([prompts] + out, 1)  # (B, P + R)
            t1 = time.perf_counter()
            # 2. scoring: the preference model, the policy's log-probabilities and values, the reference's
            #    log-probabilities; KL-shaped rewards, GAE, whitening
            with torch.no_grad():
                score = pm_body.hidden(seqs)[:, -1] @ pm_head  # (B)
                hid, logits = policy(seqs)
                old_logp = response_logprobs(logits, seqs, P - 1, R)  # (B, R)
                old_values = hid[:, P - 1:P - 1 + R] @ value_head  # (B, R)
                ref_logp = response_logprobs(reference(seqs)[1], seqs, P - 1, R)
                rewards = -KL_COEF * (old_logp - ref_logp)  # k1 estimator
                rewards[:, -1] += score
                adv = torch.zeros_like(rewards)
                last_gae = torch.zeros(BATCH)
                for k in reversed(range(R)):
                    next_value = old_values[:, k + 1] if k + 1 < R else torch.zeros(BATCH)
                    delta = rewards[:, k] + GAMMA * next_value - old_values[:, k]
                    last_gae = delta + GAMMA * LAMBDA * last_gae
                    adv[:, k] = last_gae
                returns = adv + old_values
                adv = (adv - adv.mean()) * torch.rsqrt(adv.var() + 1e-8)  # whitened (unbiased variance)
            t2 = time.perf_counter()
            # 3. training: PPO epochs over shuffled minibatches
            step_loss = 0.0
            for _ in range(PPO_EPOCHS):
                perm = torch.randperm(BATCH)
                for mb in range(PPO_MINIBATCHES):
                    idx = perm[mb * BATCH // PPO_MINIBATCHES:(mb + 1) * BATCH // PPO_MINIBATCHES]
                    opt.zero_grad(set_to_none=True)
                    hid, logits = policy(seqs[idx])
                    logp = response_logprobs(logits, seqs[idx], P - 1, R)
                    values = hid[:, P - 1:P - 1 + R] @ value_head
                    a, ov, ret = adv[idx], old_values[idx], returns[idx]
                    ratio = torch.exp(logp - old_logp[idx])
                    pg_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - PPO_CLIP, 1 + PPO_CLIP)).mean()
                    vclip = torch.max(torch.min(values, ov + PPO_CLIP_VALUE), ov - PPO_CLIP_VALUE)
                    vf_loss = 0.5 * torch.max((values - ret) ** 2, (vclip - ret) ** 2).mean()
                    loss = pg_loss + VF_COEF * vf_loss
                    with torch.no_grad():  # the entropy statistic, as cai's trainer and TRL report it
                        lg = logits[:, P - 1:P - 1 + R]
                        _ = -(torch.softmax(lg, -1) * torch.log_softmax(lg, -1)).sum(-1).mean()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
                    opt.step()
                    step_loss += loss.item() / (PPO_EPOCHS * PPO_MINIBATCHES)
            t3 = time.perf_counter()
            losses.append(step_loss)
            if i > 0:
                gen_t.append(t1 - t0)
                score_t.append(t2 - t1)
                train_t.append(t3 - t2)
                times.append(t3 - t0)
        result["generation_seconds"] = statistics.median(gen_t)
        result["scoring_seconds"] = statistics.median(score_t)
        result["training_seconds"] = statistics.median(train_t)
        result["items"] = BATCH
    else:
        raise SystemExit(f"unknown workload {workload} (sft, pm, dpo or ppo)")
    result["seconds"] = statistics.median(times)
    result["step_seconds"] = times
    result["losses"] = losses
    result["threads"] = threads
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
