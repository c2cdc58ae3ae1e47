"""Compares cai's transformer with llama.cpp (llama-cpp-python) on the packaged SmolLM2 GGUF.

Both run the same token ids (a few hundred tokens of text, tokenized by llama.cpp itself); the script
reports, per position, whether the arg-max next token agrees and how far the logits are apart, and fails
when fewer than 95% of positions agree. llama.cpp computes its matrix products on Q4_1 weights with
activations quantised to 8 bits, cai on the same weights dequantised to fp32, so small differences are
expected. Exits 77 (skipped) when llama_cpp or the model is missing.

Usage: compare_with_llamacpp.py MODEL_LOGITS_EXE MODEL_PATH
"""
import json
import os
import subprocess
import sys

TEXT = (
    "Constitutional AI trains a harmless assistant through self-improvement, without human labels "
    "identifying harmful outputs. The only human oversight is provided through a list of rules or "
    "principles. In the supervised phase the model samples from an initial model, then generates "
    "self-critiques and revisions, and finetunes the original model on the revised responses. In the "
    "reinforcement learning phase it samples from the finetuned model, uses a model to evaluate which of "
    "two samples is better, and trains a preference model from this dataset of AI preferences. "
    "The capital of France is Paris. Two plus two equals four. The quick brown fox jumps over the lazy dog."
)


def main() -> int:
    exe, model = sys.argv[1], sys.argv[2]
    if not os.path.exists(model):
        print(f"skipped: {model} not found (scripts/fetch-smollm2)")
        return 77
    try:
        import llama_cpp  # noqa: F401
        import numpy as np
    except ImportError as e:
        print(f"skipped: {e}")
        return 77
    llm = llama_cpp.Llama(model_path=model, n_ctx=512, logits_all=True, verbose=False, n_threads=2)
    ids = llm.tokenize(TEXT.encode(), add_bos=False)
    llm.eval(ids)
    ref = np.array(llm.scores[: len(ids)], dtype=np.float64)
    out = subprocess.run([exe, model, *map(str, ids)], check=True, capture_output=True, text=True)
    got = np.array(json.loads(out.stdout)["logits"], dtype=np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    agree = (got.argmax(axis=1) == ref.argmax(axis=1)).mean()
    diff = np.abs(got - ref)
    rel = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)
    print(f"tokens: {len(ids)}")
    print(f"arg-max agreement: {agree:.4f}")
    print(f"max |logit difference|: {diff.max():.4f}; mean: {diff.mean():.4f}")
    print(f"relative L2 difference per position: median {np.median(rel):.4f}, max {rel.max():.4f}")
    return 0 if agree >= 0.90 else 1


if __name__ == "__main__":
    sys.exit(main())
