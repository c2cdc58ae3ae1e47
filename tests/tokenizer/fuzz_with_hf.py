#!/usr/bin/env python3
"""CTest check: random texts (several scripts, white space runs, digits, contractions, emoji, special
tokens) encoded by cai and by Hugging Face tokenizers give the same ids, with GPT-2 (shared files) and,
when its tokenizer.json is in the model cache, SmolLM2; and cai's Llama-3 pre-tokenizer cuts them where
HF's Split(Regex(Llama-3 pattern), "isolated") does.
Usage: fuzz_with_hf.py <cai_test_tokenizer executable> <work folder> [count] [seed]
Exits 77 (CTest SKIP_RETURN_CODE) when the Python package `tokenizers` is not importable."""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

try:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
except ImportError:
    print("SKIP: the Python package 'tokenizers' is not installed (pip install tokenizers)")
    sys.exit(77)

exe, work = sys.argv[1], Path(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
seed = int(sys.argv[4]) if len(sys.argv) > 4 else int(os.environ.get("CAI_FUZZ_SEED", "20240601"))
root = Path(__file__).resolve().parents[2]
gpt2_dir = root.parent / "shared" / "data" / "gpt2-bpe"
cache = Path(os.environ.get("CAI_MODEL_CACHE", Path.home() / ".cache" / "cai"))
work.mkdir(parents=True, exist_ok=True)

rng = random.Random(seed)
pools = [
    [chr(c) for c in range(0x20, 0x7F)], list(" \t\n\r\u000b\u000c"), [" "] * 4, ["\n"] * 3,
    [chr(c) for c in range(0xA0, 0x2FF)], [chr(c) for c in range(0x300, 0x370)], [chr(c) for c in range(0x370, 0x530)],
    [chr(c) for c in range(0x590, 0x700)], [chr(c) for c in range(0x900, 0xE00)], [chr(c) for c in range(0x1100, 0x1200)],
    [chr(c) for c in range(0x2000, 0x2070)], [chr(c) for c in range(0x2150, 0x2190)], [chr(c) for c in range(0x3000, 0x3100)],
    [chr(c) for c in range(0x4E00, 0x4E80)], [chr(c) for c in range(0xAC00, 0xAC80)], [chr(c) for c in range(0xFF00, 0xFFF0)],
    [chr(c) for c in range(0x1F300, 0x1FAFF)], [chr(c) for c in range(0x10000, 0x10100)], [chr(c) for c in range(0x1D400, 0x1D500)],
    list("0123456789") * 3, ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'", "''"],
    ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|", "|>"], ["\u200d", "\ufe0f", "\u00a0", "\u3000", "\u2028", "\u0085"],
    ["the", " the", "Hello", " world", "ing", " 2024", "  ", "\n\n"],
    [chr(c) for c in range(0x105C0, 0x105F4)] + [chr(c) for c in range(0x10D40, 0x10D50)] + ["\u1c89", "\u1c8a"],
]
texts = []
for _ in range(count):
    k = rng.choice([1, 2, 5, 10, 30, 80])
    texts.append("".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, k))))
(work / "texts.json").write_text(json.dumps(texts))
env = dict(os.environ, CAI_TOKENIZER_CHECK_DIR=str(work))
subprocess.run([exe, "Texts given by the Hugging Face fuzz check are encoded to a file"], check=True, env=env,
               stdout=subprocess.DEVNULL)
cai = json.loads((work / "cai_ids.json").read_text())

gpt2 = Tokenizer(models.BPE.from_file(str(gpt2_dir / "encoder.json"), str(gpt2_dir / "vocab.bpe")))
gpt2.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
gpt2.decoder = decoders.ByteLevel()
gpt2.add_special_tokens(["<|endoftext|>"])
refs = {"gpt2": gpt2}
smol = cache / "SmolLM2-135M-Instruct.tokenizer.json"
if smol.exists() and "smollm2" in cai:
    refs["smollm2"] = Tokenizer.from_file(str(smol))
bad = 0
for name, tok in refs.items():
    want = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    for t, w, g in zip(texts, want, cai[name]):
        if w != g:
            bad += 1
            if bad <= 10:
                print(f"{name} MISMATCH on {t!r}:\n  hf  {w}\n  cai {g}")
    print(f"{name}: {len(texts)} random texts (seed {seed}) compared")
from tokenizers import Regex

LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
split = pre_tokenizers.Split(Regex(LLAMA3), "isolated")
for t, got in zip(texts, cai["llama3_pieces"]):
    want = [[len(t[:a].encode()), len(t[:b].encode())] for _, (a, b) in split.pre_tokenize_str(t)]
    if want != got:
        bad += 1
        if bad <= 10:
            print(f"llama3 pieces MISMATCH on {t!r}:\n  hf  {want}\n  cai {got}")
print(f"llama3 pre-tokenizer: {len(texts)} random texts compared")
print(f"{bad} mismatches")
sys.exit(1 if bad else 0)
