"""An independent fp32 reference for the GGUF path: a Llama forward pass written in numpy on the weights
that gguf-py (PyPI `gguf`) dequantises, applying rotary embeddings the way llama.cpp does (interleaved
pairs on its permuted q/k rows), compared with cai's logits (which undoes the permutation and rotates
half-split pairs). Both compute in fp32 on the same weights, so they must agree closely; this separates
cai's own error from the quantisation noise of the llama.cpp comparison.

Usage: compare_with_numpy.py MODEL_LOGITS_EXE MODEL_PATH   (exits 77 when gguf/numpy or the model is absent)
"""
import json
import os
import subprocess
import sys

IDS = [504, 3575, 282, 4649, 314, 7042, 30, 378, 2365, 6354, 20873, 3117, 744, 260, 23790, 2767, 30]


def main() -> int:
    exe, model = sys.argv[1], sys.argv[2]
    if not os.path.exists(model):
        print(f"skipped: {model} not found")
        return 77
    try:
        import numpy as np
        from gguf import GGUFReader
        from gguf.quants import dequantize
    except ImportError as e:
        print(f"skipped: {e}")
        return 77
    r = GGUFReader(model)
    field = lambda k: r.fields[k].parts[r.fields[k].data[0]][0]
    L, C = int(field("llama.block_count")), int(field("llama.embedding_length"))
    H, KVH = int(field("llama.attention.head_count")), int(field("llama.attention.head_count_kv"))
    eps, theta = float(field("llama.attention.layer_norm_rms_epsilon")), float(field("llama.rope.freq_base"))
    D = C // H
    W = {t.name: dequantize(t.data, t.tensor_type).reshape([int(x) for x in reversed(t.shape)]).astype(np.float32)
         for t in r.tensors}
    T = len(IDS)
    x = W["token_embd.weight"][IDS]

    def rms(v, w):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w

    pos = np.arange(T)[:, None]
    freq = theta ** (-np.arange(0, D, 2) / D)
    ang = pos * freq[None, :]
    cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)

    def rope_interleaved(v, heads):  # (T, heads*D), pairs (2i, 2i+1)
        v = v.reshape(T, heads, D // 2, 2)
        a, b = v[..., 0], v[..., 1]
        c, s = cos[:, None, :], sin[:, None, :]
        return np.stack([a * c - b * s, a * s + b * c], -1).reshape(T, heads * D)

    mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
    for l in range(L):
        p = f"blk.{l}."
        h = rms(x, W[p + "attn_norm.weight"])
        q = rope_interleaved(h @ W[p + "attn_q.weight"].T, H).reshape(T, H, D)
        k = rope_interleaved(h @ W[p + "attn_k.weight"].T, KVH).reshape(T, KVH, D)
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, KVH, D)
        k, v = np.repeat(k, H // KVH, axis=1), np.repeat(v, H // KVH, axis=1)
        att = np.einsum("thd,shd->hts", q, k) / np.sqrt(D) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        a = np.einsum("hts,shd->thd", att, v).reshape(T, C)
        x = x + a @ W[p + "attn_output.weight"].T
        h = rms(x, W[p + "ffn_norm.weight"])
        g, u = h @ W[p + "ffn_gate.weight"].T, h @ W[p + "ffn_up.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ W[p + "ffn_down.weight"].T
    out_w = W.get("output.weight", W["token_embd.weight"])
    ref = rms(x, W["output_norm.weight"]) @ out_w.T

    out = subprocess.run([exe, model, *map(str, IDS)], check=True, capture_output=True, text=True)
    got = np.array(json.loads(out.stdout)["logits"], dtype=np.float32)
    rel = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    agree = (got.argmax(1) == ref.argmax(1)).mean()
    print(f"tokens: {T}; relative L2 difference of all logits: {rel:.2e}; arg-max agreement: {agree:.3f}")
    return 0 if rel < 1e-4 and agree == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
