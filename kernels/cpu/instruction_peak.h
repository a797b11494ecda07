// The CPU's arithmetic peak, measured: how many vector multiply-adds per second its cores issue when nothing else
// limits them (no memory traffic, 12 independent accumulators per thread, every OpenMP thread at once). A GEMM rate
// is then a fraction of a physical limit, not only of another GEMM: on the 2-core AVX512-BF16 box of
// bench/results/train/ a vdpbf16ps issues at a quarter of the rate of an f32 FMA, so bf16 GEMMs there peak at half
// the f32 FLOP rate, however well they are written. Printed by `bench gemm` (CPU).
#pragma once
#include <string>
#include <vector>

namespace linspec::kernels::cpu {

struct InstructionPeak {
  std::string kind;   // f32_fma (vfmadd, 16 lanes), bf16_dot (vdpbf16ps), int8_dot (vpdpbusd)
  double per_ns = 0;  // instructions per nanosecond, all threads together
  double gflops = 0;  // 2 FLOPs per multiply-add (int8: operations)
  int flops_per_instr = 0;
};

// The kinds this CPU has (f32_fma with AVX-512; bf16_dot with AVX512-BF16; int8_dot with AVX512-VNNI), each measured
// for about `seconds`. Empty without AVX-512.
std::vector<InstructionPeak> measure_instruction_peaks(double seconds = 0.05);

}  // namespace linspec::kernels::cpu
