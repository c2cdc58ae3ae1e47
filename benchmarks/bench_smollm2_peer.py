"""llama.cpp peer of benchmarks/bench_transformer.cpp (SmolLM2 part): greedy generation on a GGUF file
through llama-cpp-python, with the same token ids as the C++ side.

    python bench_smollm2_peer.py GGUF BATCH THREADS

Each sequence: its 128-token prompt is evaluated in one call (n_batch 512), then 128 tokens are chosen
by arg-max of the last logits, each fed back with Llama.eval, without stopping at an end token (as the
C++ side). llama-cpp-python's high-level API has no batch, so BATCH sequences run one after another
(the KV cache is reset between them). n_threads = n_threads_batch = THREADS. Warms up with a short
sequence, then times one run; prints one JSON line: seconds, tokens (new tokens), peak_mib
(ru_maxrss), checksum of the generated ids (computed as the C++ side does), version. If llama_cpp
cannot be imported it prints {"missing": ...}.
"""
import json
import resource
import sys
import time

from bench_common import checksum, token

PROMPT, NEW = 128, 128


def main():
    gguf, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    try:
        import llama_cpp
        import numpy as np
    except ImportError as e:
        print(json.dumps({"missing": str(e)}))
        return 0
    llm = llama_cpp.Llama(model_path=gguf, n_ctx=PROMPT + NEW, n_batch=512, n_threads=threads,
                          n_threads_batch=threads, logits_all=False, verbose=False)
    V = llm.n_vocab()

    def greedy(prompt, new_tokens):
        llm.reset()
        llm.eval(prompt)
        out = []
        for step in range(new_tokens):
            # the last token's logits (llama-cpp-python 0.3 no longer copies them into llm.scores)
            nxt = int(np.argmax(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(V,))))
            out.append(nxt)
            if step + 1 < new_tokens:
                llm.eval([nxt])
        return out

    prompts = [[token(b * PROMPT + t, 4242, V) for t in range(PROMPT)] for b in range(batch)]
    greedy(prompts[0], 4)  # warm-up
    t0 = time.perf_counter()
    outs = [greedy(p, NEW) for p in prompts]
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "tokens": batch * NEW, "checksum": checksum(outs),
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "version": llama_cpp.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
