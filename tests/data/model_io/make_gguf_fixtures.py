#!/usr/bin/env python3
"""Writes the GGUF fixtures of cai's tests (tests/model_io/test_gguf.cpp) with gguf-py, the Python
package of llama.cpp, which is the ground truth for the format.

    pip install gguf numpy
    python3 tests/data/model_io/make_gguf_fixtures.py      # rewrites the files next to this script

Outputs (a few KB, committed):
  gguf_tiny.gguf
      GGUF v3, general.alignment 64, metadata of every value type (nested arrays included), a tiny
      Llama configuration and tokenizer, and tensors in F32, F16, BF16, Q8_0, Q4_0 and Q4_1 (quantised
      with gguf.quants.quantize).
  gguf_tiny.expected.json
      what a reader must find: version, alignment, every metadata key (file order) with its type and
      value, every tensor's type, ne (innermost first), offset and element count, and where its values
      start in gguf_tiny.expected.bin.
  gguf_tiny.expected.bin
      the dequantised values of all tensors, little-endian float32, tensor after tensor, computed by
      gguf.quants.dequantize on the tensor bytes that gguf.GGUFReader reads back from gguf_tiny.gguf
      (and checked equal to dequantising the bytes that were written).
Fixed seed: the output is the same on every run with the same gguf version.
"""
import importlib.metadata
import json
import math
import pathlib
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V

HERE = pathlib.Path(__file__).resolve().parent
GGUF_PATH = HERE / "gguf_tiny.gguf"
JSON_PATH = HERE / "gguf_tiny.expected.json"
BIN_PATH = HERE / "gguf_tiny.expected.bin"
ALIGNMENT = 64

f32 = lambda x: float(np.float32(x))  # the value a float32 key really holds

# (key, type, value, array element type or None). Arrays of arrays infer their inner type (int -> int32,
# str -> string).
METADATA = [
    ("test.uint8", V.UINT8, 200, None),
    ("test.int8", V.INT8, -100, None),
    ("test.uint16", V.UINT16, 60000, None),
    ("test.int16", V.INT16, -30000, None),
    ("test.uint32", V.UINT32, 4000000000, None),
    ("test.int32", V.INT32, -2000000000, None),
    ("test.float32", V.FLOAT32, f32(3.14159), None),
    ("test.bool.true", V.BOOL, True, None),
    ("test.bool.false", V.BOOL, False, None),
    ("test.string", V.STRING, "h\u00e9llo, GGUF \u2713", None),
    ("test.uint64", V.UINT64, 2**64 - 1, None),
    ("test.int64", V.INT64, -(2**63), None),
    ("test.float64", V.FLOAT64, 2.718281828459045, None),
    ("test.array.uint8", V.ARRAY, [0, 1, 255], V.UINT8),
    ("test.array.int8", V.ARRAY, [-128, 0, 127], V.INT8),
    ("test.array.uint16", V.ARRAY, [0, 65535], V.UINT16),
    ("test.array.int16", V.ARRAY, [-32768, 32767], V.INT16),
    ("test.array.uint32", V.ARRAY, [1, 2, 4294967295], V.UINT32),
    ("test.array.int32", V.ARRAY, [-7, 0, 7], V.INT32),
    ("test.array.float32", V.ARRAY, [f32(0.1), f32(-2.5), f32(1e-30)], V.FLOAT32),
    ("test.array.bool", V.ARRAY, [True, False, True], V.BOOL),
    ("test.array.string", V.ARRAY, ["", "one", "two words", "\u00fcnicode"], V.STRING),
    ("test.array.uint64", V.ARRAY, [0, 2**64 - 1], V.UINT64),
    ("test.array.int64", V.ARRAY, [-(2**63), 2**63 - 1], V.INT64),
    ("test.array.float64", V.ARRAY, [0.1, -1e300], V.FLOAT64),
    ("test.array.nested", V.ARRAY, [[1, 2, 3], [4], [5, 6]], V.ARRAY),
    ("test.array.nested_strings", V.ARRAY, [["a", "b"], ["c"]], V.ARRAY),
    # A tiny Llama configuration and tokenizer.
    ("llama.block_count", V.UINT32, 2, None),
    ("llama.context_length", V.UINT32, 256, None),
    ("llama.embedding_length", V.UINT32, 64, None),
    ("llama.feed_forward_length", V.UINT32, 160, None),
    ("llama.attention.head_count", V.UINT32, 4, None),
    ("llama.attention.head_count_kv", V.UINT32, 2, None),
    ("llama.rope.freq_base", V.FLOAT32, f32(100000.0), None),
    ("llama.attention.layer_norm_rms_epsilon", V.FLOAT32, f32(1e-5), None),
    ("tokenizer.ggml.model", V.STRING, "gpt2", None),
    ("tokenizer.ggml.pre", V.STRING, "smollm", None),
    ("tokenizer.ggml.tokens", V.ARRAY, ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "ab", "\u0120", "\u0120ab"], V.STRING),
    ("tokenizer.ggml.token_type", V.ARRAY, [3, 3, 3, 1, 1, 1, 1, 1], V.INT32),
    ("tokenizer.ggml.merges", V.ARRAY, ["a b", "\u0120 ab"], V.STRING),
    ("tokenizer.ggml.bos_token_id", V.UINT32, 1, None),
    ("tokenizer.ggml.eos_token_id", V.UINT32, 2, None),
    ("tokenizer.ggml.add_bos_token", V.BOOL, False, None),
    ("tokenizer.chat_template", V.STRING, "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}", None),
]


def inferred(value):
    """gguf-py's element type for the inner arrays of a nested array."""
    return V.get_type(value[0])


def to_json(vtype, value, sub_type):
    if vtype == V.ARRAY:
        element = sub_type if sub_type is not None else inferred(value)
        if element == V.ARRAY:
            items = [to_json(V.ARRAY, v, None) for v in value]
        else:
            items = [to_json(element, v, None)["value"] for v in value]
        return {"type": "array", "element_type": type_name(element), "value": items}
    return {"type": type_name(vtype), "value": value}


def type_name(vtype):
    return {V.UINT8: "uint8", V.INT8: "int8", V.UINT16: "uint16", V.INT16: "int16", V.UINT32: "uint32",
            V.INT32: "int32", V.FLOAT32: "float32", V.BOOL: "bool", V.STRING: "string", V.ARRAY: "array",
            V.UINT64: "uint64", V.INT64: "int64", V.FLOAT64: "float64"}[vtype]


def tensors(rng):
    """(name, ggml type, float32 source of shape outermost-first) in file order."""
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-24, -(2.0**-24), 2.0**-14, 65504.0, 1e-40, -3.5],
                       dtype=np.float32)
    f32_src = rng.standard_normal((3, 64)).astype(np.float32)
    f32_src[0, : special.size] = special
    f16_src = rng.standard_normal((3, 64)).astype(np.float32)
    f16_src[1, : special.size] = special
    bf16_src = (rng.standard_normal((2, 64)) * 100).astype(np.float32)
    bf16_src[0, : special.size] = special
    return [
        ("token_embd.weight", Q.F32, f32_src),
        ("t.f16", Q.F16, f16_src),
        ("t.bf16", Q.BF16, bf16_src),
        ("t.q8_0", Q.Q8_0, (rng.standard_normal((4, 64)) * 3).astype(np.float32)),
        ("t.q4_0", Q.Q4_0, rng.standard_normal((4, 64)).astype(np.float32)),
        ("t.q4_1", Q.Q4_1, (rng.standard_normal((4, 64)) + 0.5).astype(np.float32)),
        ("t.q4_1.3d", Q.Q4_1, rng.uniform(-2, 5, (2, 3, 32)).astype(np.float32)),
        ("output_norm.weight", Q.F32, rng.standard_normal(64).astype(np.float32)),
    ]


def main():
    rng = np.random.default_rng(20261127)
    writer = gguf.GGUFWriter(str(GGUF_PATH), "llama")
    writer.add_custom_alignment(ALIGNMENT)
    for key, vtype, value, sub_type in METADATA:
        writer.add_key_value(key, value, vtype, sub_type=sub_type if sub_type != V.ARRAY else None)

    written = {}
    for name, qtype, src in tensors(rng):
        if qtype == Q.F32:
            data = src
            writer.add_tensor(name, data)
        elif qtype == Q.F16:
            data = src.astype(np.float16)
            writer.add_tensor(name, data)
        else:
            data = gguf.quants.quantize(src, qtype)
            writer.add_tensor(name, data, raw_shape=src.shape if data.dtype != np.uint8 else None, raw_dtype=qtype)
        written[name] = (qtype, src.shape, np.asarray(data).view(np.uint8).tobytes())

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    # Read it back with gguf-py's own reader and dequantise what it finds.
    reader = gguf.GGUFReader(str(GGUF_PATH))
    assert reader.alignment == ALIGNMENT, reader.alignment
    values = []
    tensor_json = []
    offset = 0
    for t in reader.tensors:
        qtype, shape, raw = written[t.name]
        assert t.tensor_type == qtype, (t.name, t.tensor_type, qtype)
        assert list(t.shape) == list(reversed(shape)), (t.name, t.shape, shape)  # reader: innermost first
        stored = np.asarray(t.data).view(np.uint8).tobytes()
        assert stored == raw, t.name
        deq = gguf.quants.dequantize(np.frombuffer(stored, dtype=np.uint8), qtype).astype(np.float32).reshape(-1)
        again = gguf.quants.dequantize(np.frombuffer(raw, dtype=np.uint8), qtype).astype(np.float32).reshape(-1)
        assert deq.view(np.uint32).tobytes() == again.view(np.uint32).tobytes(), t.name
        assert deq.size == math.prod(shape), (t.name, deq.size)
        tensor_json.append({
            "name": t.name,
            "type": qtype.name,
            "ne": [int(d) for d in t.shape],
            "offset": int(t.data_offset) - int(reader.data_offset),
            "file_offset": int(t.data_offset),
            "n_elements": int(deq.size),
            "n_bytes": len(stored),
            "values_offset": offset,
        })
        values.append(deq)
        offset += deq.size

    # Metadata as the reader sees it must match what was written (scalars and flat arrays).
    for key, vtype, value, sub_type in METADATA:
        field = reader.fields[key]
        assert field.types[0] == vtype, key
        if vtype != V.ARRAY or sub_type not in (V.ARRAY,):
            got = field.contents()
            if vtype == V.FLOAT32 or sub_type == V.FLOAT32:
                got = [f32(x) for x in got] if isinstance(got, list) else f32(got)
            assert got == value, (key, got, value)

    expected = {
        "generator": f"tests/data/model_io/make_gguf_fixtures.py with gguf-py {importlib.metadata.version('gguf')}",
        "version": 3,
        "alignment": ALIGNMENT,
        "file_size": GGUF_PATH.stat().st_size,
        "metadata": [dict(key="general.architecture", type="string", value="llama"),
                     dict(key="general.alignment", type="uint32", value=ALIGNMENT)]
                    + [dict(key=k, **to_json(t, v, s)) for k, t, v, s in METADATA],
        "tensors": tensor_json,
    }
    # The keys in file order, as the reader found them (GGUF.* are the reader's own pseudo-fields).
    file_keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    assert sorted(file_keys) == sorted(m["key"] for m in expected["metadata"]), file_keys
    order = {k: i for i, k in enumerate(file_keys)}
    expected["metadata"].sort(key=lambda m: order[m["key"]])

    JSON_PATH.write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    np.concatenate(values).astype("<f4").tofile(BIN_PATH)
    print(f"wrote {GGUF_PATH.name} ({GGUF_PATH.stat().st_size} bytes), {JSON_PATH.name}, "
          f"{BIN_PATH.name} ({offset} values)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
