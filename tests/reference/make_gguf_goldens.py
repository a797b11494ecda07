#!/usr/bin/env python3
"""Golden GGUF file for linspec's GGUF reader and dequantisation kernels, made with gguf-py (PyPI `gguf`).

For every ggml type linspec dequantises (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K, and Q2_K Q3_K IQ4_NL,
drawn last so the earlier types keep their bytes) it stores
  q.<TYPE>    random raw blocks of that type (random bytes; the f16 scale fields are random finite halves,
              subnormals, zeros and negatives included), written as a raw tensor
  ref.<TYPE>  F32: gguf.quants.dequantize() of the same bytes, i.e. gguf-py's numpy port of ggml's kernels
plus metadata keys of every GGUF value type (test.*) whose values the C++ test checks.
Usage: $LINSPEC_CACHE/venv-hf/bin/python tests/reference/make_gguf_goldens.py
       (writes tests/reference/golden/gguf_dequant.gguf; the venv has gguf-py, see tests/reference/requirements-hf.txt)
"""
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "gguf_dequant.gguf")

# (type, rows, blocks per row, byte offsets of f16 scale fields inside a block)
QUANTS = [
    (T.Q4_0, 4, 3, [0]),
    (T.Q4_1, 4, 3, [0, 2]),
    (T.Q5_0, 4, 3, [0]),
    (T.Q5_1, 4, 3, [0, 2]),
    (T.Q8_0, 4, 3, [0]),
    (T.Q4_K, 3, 2, [0, 2]),
    (T.Q5_K, 3, 2, [0, 2]),
    (T.Q6_K, 3, 2, [208]),
]
# Added later; drawn after everything above so the cases above stay byte-identical.
MORE_QUANTS = [
    (T.Q2_K, 3, 2, [80, 82]),
    (T.Q3_K, 3, 2, [108]),
    (T.IQ4_NL, 4, 3, [0]),
]


def random_halves(rng, n):
    """Finite f16 values: mostly scale-like magnitudes, some subnormals, zeros, negatives and large ones."""
    kind = rng.integers(0, 10, size=n)
    v = rng.normal(0.0, 0.02, size=n).astype(np.float16)
    v[kind == 0] = (rng.integers(1, 1024, size=(kind == 0).sum()).astype(np.uint16)).view(np.float16)  # subnormal
    v[kind == 1] = np.float16(0.0)
    v[kind == 2] = rng.uniform(-300, 300, size=(kind == 2).sum()).astype(np.float16)
    return v


def quantized_case(rng, qtype, rows, blocks_per_row, half_offsets):
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows * blocks_per_row, type_size), dtype=np.uint8)
    for off in half_offsets:
        raw[:, off:off + 2] = random_halves(rng, raw.shape[0]).view(np.uint8).reshape(-1, 2)
    raw = raw.reshape(rows, blocks_per_row * type_size)
    ref = dequantize(raw, qtype).astype(np.float32)
    assert ref.shape == (rows, blocks_per_row * block_size) and np.all(np.isfinite(ref))
    return raw, ref


def main():
    rng = np.random.default_rng(20240611)
    w = gguf.GGUFWriter(OUT, arch="test")
    # Metadata of every value type.
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo ✓")
    w.add_array("test.int_array", [1, -2, 3])
    w.add_array("test.string_array", ["a", "", "ccc"])
    w.add_array("test.float_array", [0.5, -1.25])
    w.add_array("test.nested_array", [[1, 2], [3]])

    for qtype, rows, bpr, halves in QUANTS:
        raw, ref = quantized_case(rng, qtype, rows, bpr, halves)
        w.add_tensor(f"q.{qtype.name}", raw, raw_dtype=qtype)
        w.add_tensor(f"ref.{qtype.name}", ref)

    f32 = rng.normal(0, 1, size=(3, 16)).astype(np.float32)
    f32[0, :4] = [0.0, -0.0, 1e-40, -3e38]  # zero signs, an f32 subnormal, a large value
    w.add_tensor("q.F32", f32)
    w.add_tensor("ref.F32", dequantize(f32, T.F32).astype(np.float32))

    f16_bits = rng.integers(0, 0x10000, size=(3, 16), dtype=np.uint16)
    f16_bits[(f16_bits & 0x7C00) == 0x7C00] &= 0x3FFF  # no inf/NaN
    f16 = f16_bits.view(np.float16)
    w.add_tensor("q.F16", f16)
    w.add_tensor("ref.F16", dequantize(f16, T.F16).astype(np.float32))

    bf16_bits = rng.integers(0, 0x10000, size=(3, 16), dtype=np.uint16)
    bf16_bits[(bf16_bits & 0x7F80) == 0x7F80] &= 0x3FFF  # no inf/NaN
    bf16_raw = bf16_bits.view(np.uint8).reshape(3, 32)
    w.add_tensor("q.BF16", bf16_raw, raw_dtype=T.BF16)
    w.add_tensor("ref.BF16", dequantize(bf16_raw, T.BF16).astype(np.float32))

    for qtype, rows, bpr, halves in MORE_QUANTS:
        raw, ref = quantized_case(rng, qtype, rows, bpr, halves)
        w.add_tensor(f"q.{qtype.name}", raw, raw_dtype=qtype)
        w.add_tensor(f"ref.{qtype.name}", ref)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
