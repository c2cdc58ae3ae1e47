#!/usr/bin/env python3
"""Checks cai's GGUF reader against gguf-py (llama.cpp's Python package) on a real model: the header,
every tensor's type, dimensions and offset, the Llama configuration, the tokenizer metadata, and the
dequantised values of one tensor of each stored type, bit for bit.

Usage: check_gguf_with_python.py <gguf_dump program> <scratch folder> <model file>
The environment variable CAI_MODEL_CACHE, when set, names the folder of the model file instead.
Exits 77 (CTest's skip code for this test) when gguf or numpy cannot be imported or the model file is
absent (scripts/fetch-smollm2 fetches it).
"""
import json
import os
import subprocess
import sys

try:
    import numpy as np
    import gguf
    from gguf import GGUFValueType as V
except ImportError as e:  # depends on the machine
    print(f"SKIP: the Python packages gguf and numpy are needed ({e}); pip install gguf numpy")
    sys.exit(77)


def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def main() -> int:
    dump, scratch, model = sys.argv[1:4]
    if os.environ.get("CAI_MODEL_CACHE"):  # the cache named when the test runs wins over the configured one
        model = os.path.join(os.environ["CAI_MODEL_CACHE"], os.path.basename(model))
    if not os.path.exists(model):
        print(f"SKIP: {model} is absent; run scripts/fetch-smollm2")
        return 77
    reader = gguf.GGUFReader(model)

    # One tensor of each stored type, plus a few more of the most common one.
    chosen = {}
    for t in reader.tensors:
        chosen.setdefault(t.tensor_type, []).append(t)
    names = []
    for tensors in chosen.values():
        names += [t.name for t in tensors[:1]] + [t.name for t in tensors[-1:] if len(tensors) > 1]

    os.makedirs(scratch, exist_ok=True)
    run = subprocess.run([dump, model, scratch, *names], capture_output=True, text=True)
    if run.returncode != 0:
        print(f"FAIL: gguf_dump exited {run.returncode}: {run.stderr}")
        return 1
    ours = json.loads(run.stdout)
    failures = []

    def expect(what, got, want):
        if got != want:
            failures.append(f"{what}: cai {got!r}, gguf-py {want!r}")

    expect("data offset", ours["data_offset"], int(reader.data_offset))
    expect("alignment", ours["alignment"], int(reader.alignment))
    expect("metadata count", ours["n_metadata"], len([k for k in reader.fields if not k.startswith("GGUF.")]))
    expect("tensor count", len(ours["tensors"]), len(reader.tensors))
    for mine, theirs in zip(ours["tensors"], reader.tensors):
        want = {"name": theirs.name, "type": theirs.tensor_type.name, "ne": [int(d) for d in theirs.shape],
                "offset": int(theirs.data_offset) - int(reader.data_offset), "n_bytes": int(theirs.n_bytes)}
        expect(f"tensor {theirs.name}", mine, want)

    arch = field(reader, "general.architecture")
    if arch == "llama":
        c = ours["config"]
        for key, name in [("llama.block_count", "block_count"), ("llama.embedding_length", "embedding_length"),
                          ("llama.attention.head_count", "head_count"),
                          ("llama.attention.head_count_kv", "head_count_kv"),
                          ("llama.feed_forward_length", "feed_forward_length"),
                          ("llama.context_length", "context_length")]:
            expect(key, c[name], field(reader, key))
        expect("llama.rope.freq_base", np.float32(c["rope_freq_base"]), np.float32(field(reader, "llama.rope.freq_base")))
        expect("llama.attention.layer_norm_rms_epsilon", np.float32(c["rms_norm_eps"]),
               np.float32(field(reader, "llama.attention.layer_norm_rms_epsilon")))
        expect("vocab size", c["vocab_size"], len(field(reader, "tokenizer.ggml.tokens")))
    tok = ours.get("tokenizer", {})
    for key, name in [("tokenizer.ggml.model", "model"), ("tokenizer.ggml.tokens", "tokens"),
                      ("tokenizer.ggml.merges", "merges"), ("tokenizer.ggml.token_type", "token_type"),
                      ("tokenizer.ggml.bos_token_id", "bos_token_id"), ("tokenizer.ggml.eos_token_id", "eos_token_id"),
                      ("tokenizer.chat_template", "chat_template")]:
        want = field(reader, key)
        if want is not None:
            expect(key, tok.get(name), want)

    by_name = {t.name: t for t in reader.tensors}
    for i, name in enumerate(names):
        t = by_name[name]
        want = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).reshape(-1)
        got = np.fromfile(os.path.join(scratch, f"{i}.f32"), dtype="<f4")
        if got.shape != want.shape:
            failures.append(f"tensor {name}: {got.size} values, gguf-py {want.size}")
        elif got.view(np.uint32).tobytes() != want.view(np.uint32).tobytes():
            bad = int(np.count_nonzero(got.view(np.uint32) != want.view(np.uint32)))
            failures.append(f"tensor {name} ({t.tensor_type.name}): {bad} of {want.size} values differ")

    if failures:
        for f in failures[:20]:
            print("FAIL:", f)
        return 1
    print(f"OK: {len(reader.tensors)} tensor infos, metadata and {len(names)} dequantised tensors "
          f"({', '.join(sorted(t.name for t in chosen))}) agree with gguf-py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
