"""What the benchmark peers share with benchmarks/bench_transformer.cpp: the token ids both sides feed
(a fixed multiplicative hash, so no data file is needed) and the checksum of generated ids that shows
both sides produced the same tokens."""


def token(i, salt, v):
    return ((i * 2654435761 + salt) % 4294967296) % v


def checksum(out):
    h = 0
    for b, row in enumerate(out):
        for t, tok in enumerate(row):
            h = (h + int(tok) * (b * 131 + t + 1)) % 1000000007
    return h


def configure_torch(torch, threads):
    """The fair PyTorch peer: denormals flushed to zero (without it a training step here is 3-4x slower),
    `threads` intra-op threads and one inter-op thread, seed 0."""
    torch.set_flush_denormal(True)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
