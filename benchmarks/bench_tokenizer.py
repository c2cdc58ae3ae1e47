#!/usr/bin/env python3
"""Peer of bench_tokenizer.cpp: Hugging Face tokenizers encoding the same documents with the same
vocabulary. Usage: bench_tokenizer.py <docs.json> <threads> <encoder.json> <vocab.bpe>   (GPT-2 files)
               or  bench_tokenizer.py <docs.json> <threads> <tokenizer.json>
Prints one JSON line {"seconds": s, "bytes": n, "tokens": t}; exits 77 when `tokenizers` is missing.
The thread count goes to RAYON_NUM_THREADS before tokenizers is imported."""
import json
import os
import sys
import time

docs_path, threads, files = sys.argv[1], sys.argv[2], sys.argv[3:]
os.environ["RAYON_NUM_THREADS"] = threads
os.environ["TOKENIZERS_PARALLELISM"] = "true" if int(threads) > 1 else "false"
try:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
except ImportError:
    print("tokenizers is not installed (pip install tokenizers)", file=sys.stderr)
    sys.exit(77)

docs = json.load(open(docs_path, encoding="utf-8"))
if len(files) == 2:
    tok = Tokenizer(models.BPE.from_file(*files))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
else:
    tok = Tokenizer.from_file(files[0])
start = time.perf_counter()
out = tok.encode_batch(docs, add_special_tokens=False)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "bytes": sum(len(d.encode()) for d in docs),
                  "tokens": sum(len(e.ids) for e in out)}))
