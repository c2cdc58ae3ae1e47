#!/usr/bin/env python3
"""Checks that the reference implementation (PyPI `safetensors` + `numpy`) reads a file written by cai's
save_safetensors, with exact values and metadata, and that its own writer produces the same bytes.

Usage: check_safetensors_with_python.py <path of the write_safetensors_for_python program> <scratch directory>
Exits 77 (CTest's skip code for this test) when `safetensors` or `numpy` cannot be imported.
"""
import os
import subprocess
import sys

try:
    import numpy as np
    import safetensors
    from safetensors import safe_open
    from safetensors.numpy import load_file, save
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: the Python packages safetensors and numpy are needed ({e}); pip install safetensors numpy")
    sys.exit(77)


def main() -> int:
    writer, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    path = os.path.join(scratch, "from_cai.safetensors")
    subprocess.run([writer, path], check=True)

    # The values write_safetensors_for_python.cpp writes.
    expected = {
        "alpha": ((np.arange(15, dtype=np.float32) - 7) * np.float32(0.375)).reshape(3, 5),
        "beta": np.array([np.inf, -0.0, -65504.25], dtype=np.float32),
        "gamma": np.array(1e-40, dtype=np.float32),
        "delta": np.zeros((0, 4), dtype=np.float32),
    }
    loaded = load_file(path)
    if sorted(loaded) != sorted(expected):
        print(f"FAIL: tensors {sorted(loaded)}, expected {sorted(expected)}")
        return 1
    for name, want in expected.items():
        got = loaded[name]
        if got.dtype != np.float32 or got.shape != want.shape or got.tobytes() != want.tobytes():
            print(f"FAIL: tensor {name}: {got.dtype} {got.shape} {got!r}, expected {want.shape} {want!r}")
            return 1
    with safe_open(path, framework="np") as f:
        if f.metadata() != {"written_by": "cai"}:
            print(f"FAIL: metadata {f.metadata()}")
            return 1
    with open(path, "rb") as f:
        ours = f.read()
    theirs = save(expected, metadata={"written_by": "cai"})
    if ours != theirs:
        print("FAIL: the reference writer produces different bytes")
        print(" ours:  ", ours[:200])
        print(" theirs:", theirs[:200])
        return 1
    print(f"OK: safetensors {safetensors.__version__} reads {len(expected)} tensors written by cai, byte-identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
