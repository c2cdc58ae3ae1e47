#!/usr/bin/env python3
"""Writes the safetensors fixtures of cai's model_io tests with the reference implementation.

The PyPI packages `safetensors` and `numpy` (no torch) write three tiny files next to this script:

  tiny_f32.safetensors   F32 tensors "a" (2, 3) and "b" (4,), metadata {"format": "np"}
  tiny_f16.safetensors   F16 tensor "h" (2, 4) with 1, -2, 65504, the smallest subnormal, the largest
                         subnormal, +inf, -0 and NaN; F16 tensor "s" (1,)
  tiny_bf16.safetensors  BF16 tensor "w" (3, 2) with ordinary values, a subnormal, -inf and the largest
                         finite value; numpy has no bfloat16, so the bits are a uint16 array handed to the
                         Rust serializer with the dtype "bfloat16" (the bytes are the reference writer's)

and `expected_values.json`, which gives, for each file and tensor, its dtype, shape and the IEEE-754
bit pattern (uint32) of every element after exact conversion to float32, computed by numpy
(float16 -> float32 by astype, bfloat16 -> float32 by shifting the bits left by 16).

Run it again with the Python of scripts/setup (`~/.cache/cai/venv/bin/python
tests/data/model_io/make_safetensors_fixtures.py`) or any python3 with both packages; the output is
deterministic.
"""
import json
import os

import numpy as np
import safetensors
import safetensors.numpy

HERE = os.path.dirname(os.path.abspath(__file__))


def f32_bits(values: np.ndarray) -> list:
    return [int(x) for x in np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).ravel()]


def main() -> None:
    expected = {}

    # F32, through the public numpy API.
    a = np.array([[0.5, -1.25, 3.0], [1e-3, 2.0**-126, -0.0]], dtype=np.float32)
    b = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    data = safetensors.numpy.save({"a": a, "b": b}, metadata={"format": "np"})
    with open(os.path.join(HERE, "tiny_f32.safetensors"), "wb") as f:
        f.write(data)
    expected["tiny_f32.safetensors"] = {
        "metadata": {"format": "np"},
        "tensors": {
            "a": {"dtype": "F32", "shape": list(a.shape), "bits": f32_bits(a)},
            "b": {"dtype": "F32", "shape": list(b.shape), "bits": f32_bits(b)},
        },
    }

    # F16: special values by their bit patterns.
    h_bits = np.array([0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x7C00, 0x8000, 0x7E00],
                      dtype=np.uint16).reshape(2, 4)
    h = h_bits.view(np.float16)
    s = np.array([0.1], dtype=np.float16)
    data = safetensors.numpy.save({"h": h, "s": s})
    with open(os.path.join(HERE, "tiny_f16.safetensors"), "wb") as f:
        f.write(data)
    expected["tiny_f16.safetensors"] = {
        "metadata": {},
        "tensors": {
            "h": {"dtype": "F16", "shape": list(h.shape), "bits": f32_bits(h.astype(np.float32))},
            "s": {"dtype": "F16", "shape": list(s.shape), "bits": f32_bits(s.astype(np.float32))},
        },
    }

    # BF16: numpy has no bfloat16; hand the uint16 bits to the reference serializer.
    w_bits = np.array([0x3F80, 0xC040, 0x3DCD, 0x0001, 0xFF80, 0x7F7F], dtype=np.uint16).reshape(3, 2)
    spec = safetensors.TensorSpec(dtype="bfloat16", shape=list(w_bits.shape),
                                  data_ptr=w_bits.ctypes.data, data_len=w_bits.nbytes)
    data = bytes(safetensors.serialize({"w": spec}, metadata={"source": "cai fixture"}))
    with open(os.path.join(HERE, "tiny_bf16.safetensors"), "wb") as f:
        f.write(data)
    w_f32 = (w_bits.astype(np.uint32) << 16).view(np.float32)
    expected["tiny_bf16.safetensors"] = {
        "metadata": {"source": "cai fixture"},
        "tensors": {"w": {"dtype": "BF16", "shape": list(w_bits.shape), "bits": f32_bits(w_f32)}},
    }

    with open(os.path.join(HERE, "expected_values.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
