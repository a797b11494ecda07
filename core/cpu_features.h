// What the host CPU can do natively, for choices that depend on it (train.precision: auto).
#pragma once

namespace linspec {

// True when the CPU has native bf16 dot products (AVX512-BF16 or AMX-BF16). Without them oneDNN emulates bf16
// GEMMs, several times slower than f32 (seen: 62 vs 309 GFLOP/s at n = 1024 on an AVX-512 Ice Lake).
bool cpu_has_native_bf16();

}  // namespace linspec
