#!/usr/bin/env python3
"""Reference answers for the real-server remote tests, computed in process with llama_cpp (the library
that llama-cpp-python's server wraps), so that what cai's remote_model reads through HTTP can be
compared with what the model itself gives.

Usage: llama_reference.py MODEL.gguf < requests.json > answers.json
  requests.json: {"generate": [{"prompt": str, "max_tokens": int}], "score": [{"context": str,
                  "continuation": str}], "prefix": str, "n_ctx": int}
  answers.json:  {"generate": [str], "score": [float]}

Generation is greedy (temperature 0). A score is log P(continuation | prefix + context) summed over the
continuation's tokens, the boundary being the first token that starts at or after the end of the
context (in code points of the detokenized prompt, as the server's text offsets count); the prefix is
tokenized with special tokens (the BOS marker) and not counted in offsets.
Exit status 4 when llama_cpp cannot be imported (the caller skips).
"""

import json
import math
import sys


def main():  # noqa: C901
    try:
        import numpy as np
        from llama_cpp import Llama
    except ImportError as e:
        print("llama_cpp is not importable: %s" % e, file=sys.stderr)
        return 4
    model_path = sys.argv[1]
    req = json.load(sys.stdin)
    llm = Llama(model_path=model_path, n_ctx=req.get("n_ctx", 1024), logits_all=True, verbose=False,
                seed=0)
    out = {"generate": [], "score": []}
    for g in req.get("generate", []):
        r = llm.create_completion(g["prompt"], max_tokens=g["max_tokens"], temperature=0.0,
                                  stop=g.get("stop") or None, seed=g.get("seed", 0))
        out["generate"].append(r["choices"][0]["text"])
    prefix = req.get("prefix", "")
    for s in req.get("score", []):
        context, continuation = s["context"], s["continuation"]
        tokens = llm.tokenize((prefix + context + continuation).encode("utf-8"), special=True)
        start = 0
        if prefix:
            start = len(llm.tokenize(prefix.encode("utf-8"), special=True))
        boundary = len(context)
        llm.reset()
        llm.eval(tokens)
        total = 0.0
        for i in range(max(start, 1), len(tokens)):
            offset = len(llm.detokenize(tokens[start:i]).decode("utf-8", errors="ignore"))
            if offset < boundary:
                continue
            row = np.asarray(llm.scores[i - 1], dtype=np.float64)
            m = row.max()
            lse = m + math.log(np.exp(row - m).sum())
            total += float(row[tokens[i]] - lse)
        out["score"].append(total)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
