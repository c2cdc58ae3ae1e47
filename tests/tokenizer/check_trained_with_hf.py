#!/usr/bin/env python3
"""CTest check that tokenizer.json files trained and saved by cai (one per pre-tokenizer: GPT-2, SmolLM,
Llama 3) load in Hugging Face tokenizers and encode exactly as cai does. Usage: check_trained_with_hf.py <cai_test_tokenizer executable> <work folder>.
Exits 77 (CTest SKIP_RETURN_CODE) when the Python package `tokenizers` is not importable."""
import json
import os
import subprocess
import sys

try:
    from tokenizers import Tokenizer
except ImportError:
    print("SKIP: the Python package 'tokenizers' is not installed (pip install tokenizers)")
    sys.exit(77)

exe, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
env = dict(os.environ, CAI_TOKENIZER_CHECK_DIR=work)
subprocess.run([exe, "Trained tokenizer files are written for the Hugging Face check"], check=True, env=env)
bad = 0
for kind in ("gpt2", "smollm", "llama3"):  # the three pre-tokenizers cai writes
    tok = Tokenizer.from_file(os.path.join(work, f"tokenizer-{kind}.json"))
    data = json.load(open(os.path.join(work, f"cai_ids-{kind}.json"), encoding="utf-8"))
    for text, ids in zip(data["texts"], data["ids"]):
        got = tok.encode(text, add_special_tokens=False).ids
        if got != ids:
            bad += 1
            print(f"{kind} MISMATCH on {text[:60]!r}:\n  hf  {got[:30]}\n  cai {ids[:30]}")
        if tok.decode(got, skip_special_tokens=False) != text:
            bad += 1
            print(f"{kind} DECODE differs on {text[:60]!r}")
    print(f"{kind}: {len(data['texts'])} texts compared; vocabulary {tok.get_vocab_size()}")
print(f"{bad} mismatches")
sys.exit(1 if bad else 0)
