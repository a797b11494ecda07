// The instruction-peak probe of `bench gemm` (kernels/cpu/instruction_peak.h): every vector instruction kind the CPU
// has is measured, and its FLOP rate is its issue rate times the work of one instruction. (What the rates are is for
// the benchmark to report, not for a test to assert.)
#include <gtest/gtest.h>

#include <map>

#include "kernels/cpu/instruction_peak.h"

namespace linspec::kernels::cpu {
namespace {

TEST(InstructionPeak, MeasuresEveryKindTheCpuHas) {
  const auto peaks = measure_instruction_peaks(0.005);
  std::map<std::string, InstructionPeak> by_kind;
  for (const auto& p : peaks) by_kind[p.kind] = p;
  EXPECT_EQ(by_kind.count("f32_fma"), __builtin_cpu_supports("avx512f") ? 1u : 0u);
  EXPECT_EQ(by_kind.count("bf16_dot"),
            __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16") ? 1u : 0u);
  EXPECT_EQ(by_kind.count("int8_dot"),
            __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni") ? 1u : 0u);
  EXPECT_EQ(by_kind.size(), peaks.size()) << "one row per kind";
  const std::map<std::string, int> work = {{"f32_fma", 32}, {"bf16_dot", 64}, {"int8_dot", 128}};
  for (const auto& p : peaks) {
    EXPECT_GT(p.per_ns, 0.0) << p.kind;
    EXPECT_EQ(p.flops_per_instr, work.at(p.kind)) << p.kind;
    EXPECT_DOUBLE_EQ(p.gflops, p.per_ns * p.flops_per_instr) << p.kind;
  }
}

}  // namespace
}  // namespace linspec::kernels::cpu
