"""PyTorch peer of benchmarks/bench_transformer.cpp: the same GPT-2-style model in plain torch (tanh
GELU, tied head, LayerNorm eps 1e-5), loaded from the model.safetensors that cai::save_model wrote (GPT-2
Conv1D weights are stored (in, out) and transposed into nn.Linear's (out, in)), on the same token ids.

    python bench_transformer_peer.py TASK WEIGHTS_DIR THREADS      TASK: train | forward | generate | gemm

Configured as the issue asks: denormals flushed to zero, torch.set_num_threads(THREADS) (and one
inter-op thread). Warms up once, times the rest, prints one JSON line: seconds (median), tokens,
peak_mib (ru_maxrss), and a check (first loss, logit[0], or the generated ids' checksum, computed as
the C++ side does). If torch (or safetensors) cannot be imported it prints {"missing": ...}.
"""
import json
import math
import os
import resource
import statistics
import sys
import time

from bench_common import checksum, configure_torch, token

VOCAB, CONTEXT, D_MODEL, LAYERS, HEADS = 8192, 256, 256, 6, 8
BATCH, SEQ = 8, 256
GEN_PROMPT, GEN_NEW = 64, 128


def main():
    task, weights_dir, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
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
    if task == "gemm":  # torch's fp32 matrix-product rate, 1024 x 1024 x 1024
        times = []
        a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
        a @ b
        for _ in range(5):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        result_gflops = 2 * 1024 ** 3 / statistics.median(times) / 1e9
        result = {"version": torch.__version__, "gflops": result_gflops}
        result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps(result))
        return 0
    C, H, D = D_MODEL, HEADS, D_MODEL // HEADS
    sdpa = getattr(F, "scaled_dot_product_attention", None)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(C, eps=1e-5)
            self.c_attn = nn.Linear(C, 3 * C)
            self.attn_proj = nn.Linear(C, C)
            self.ln_2 = nn.LayerNorm(C, eps=1e-5)
            self.c_fc = nn.Linear(C, 4 * C)
            self.mlp_proj = nn.Linear(4 * C, C)

        def attend(self, q, k, v, causal):
            # q: (B, H, Tq, D); k, v: (B, H, Tk, D)
            if sdpa is not None:
                return sdpa(q, k, v, is_causal=causal)
            att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
            if causal:
                Tq = q.shape[2]
                mask = torch.ones(Tq, Tq, dtype=torch.bool).tril()
                att = att.masked_fill(~mask, float("-inf"))
            return att.softmax(-1) @ v

        def forward(self, x, cache=None, pos=0):
            B, T, _ = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
            if cache is None:
                y = self.attend(q, k, v, True)
            else:
                kc, vc = cache
                kc[:, :, pos:pos + T] = k
                vc[:, :, pos:pos + T] = v
                # prefill (pos 0) is causal; a decode step of one token sees the whole cache
                y = self.attend(q, kc[:, :, :pos + T], vc[:, :, :pos + T], pos == 0 and T > 1)
            x = x + self.attn_proj(y.transpose(1, 2).reshape(B, T, C))
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(VOCAB, C)
            self.wpe = nn.Embedding(CONTEXT, C)
            self.h = nn.ModuleList(Block() for _ in range(LAYERS))
            self.ln_f = nn.LayerNorm(C, eps=1e-5)

        def forward(self, ids, caches=None, pos=0):
            T = ids.shape[1]
            x = self.wte(ids) + self.wpe(torch.arange(pos, pos + T))
            for i, block in enumerate(self.h):
                x = block(x, None if caches is None else caches[i], pos)
            return self.ln_f(x) @ self.wte.weight.t()  # tied head

    model = GPT()
    st = load_file(os.path.join(weights_dir, "model.safetensors"))
    sd = {}
    for name, arr in st.items():
        t = torch.from_numpy(np.ascontiguousarray(arr))
        if name.endswith(".weight") and any(s in name for s in ("c_attn", "c_proj", "c_fc")):
            t = t.t().contiguous()  # Conv1D (in, out) -> Linear (out, in)
        name = name.replace("attn.c_attn", "c_attn").replace("attn.c_proj", "attn_proj")
        name = name.replace("mlp.c_fc", "c_fc").replace("mlp.c_proj", "mlp_proj")
        sd[name] = t
    model.load_state_dict(sd, strict=True)

    result = {"version": torch.__version__}
    times = []
    if task in ("train", "forward"):
        seqs = torch.tensor([[token(b * (SEQ + 1) + t, 12345, VOCAB) for t in range(SEQ + 1)] for b in range(BATCH)])
        ids, targets = seqs[:, :SEQ].contiguous(), seqs[:, 1:].contiguous()
        if task == "train":
            # the same hyper-parameters as cai::adamw{.learning_rate = 1e-3f}; fused is PyTorch's fastest
            # AdamW on the CPU (foreach and the per-tensor loop are 3 to 5 times slower here)
            try:
                opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                        weight_decay=1e-2, fused=True)
            except (RuntimeError, TypeError):
                opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                        weight_decay=1e-2, foreach=True)
            for i in range(3):  # the first is the warm-up
                t0 = time.perf_counter()
                logits = model(ids)
                loss = F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1))
                opt.zero_grad()
                loss.backward()
                opt.step()
                if i == 0:
                    result["loss"] = float(loss)
                else:
                    times.append(time.perf_counter() - t0)
        else:
            with torch.no_grad():
                for i in range(4):
                    t0 = time.perf_counter()
                    logits = model(ids)
                    if i == 0:
                        result["logit0"] = float(logits[0, 0, 0])
                    else:
                        times.append(time.perf_counter() - t0)
        result["tokens"] = BATCH * SEQ
    elif task == "generate":
        prompts = torch.tensor([[token(b * GEN_PROMPT + t, 777, VOCAB) for t in range(GEN_PROMPT)] for b in range(BATCH)])

        def greedy(new_tokens):
            L = GEN_PROMPT + new_tokens
            caches = [(torch.zeros(BATCH, H, L, D), torch.zeros(BATCH, H, L, D)) for _ in range(LAYERS)]
            out = []
            logits = model(prompts, caches, 0)
            nxt = logits[:, -1].argmax(-1)
            out.append(nxt)
            pos = GEN_PROMPT
            for _ in range(1, new_tokens):
                logits = model(nxt.view(BATCH, 1), caches, pos)
                pos += 1
                nxt = logits[:, -1].argmax(-1)
                out.append(nxt)
            return torch.stack(out, 1)

        with torch.no_grad():
            greedy(8)  # warm-up
            for _ in range(2):
                t0 = time.perf_counter()
                out = greedy(GEN_NEW)
                times.append(time.perf_counter() - t0)
        result["tokens"] = BATCH * GEN_NEW
        result["checksum"] = checksum(out.tolist())
    else:
        raise SystemExit(f"unknown task {task}")
    result["seconds"] = statistics.median(times)
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
