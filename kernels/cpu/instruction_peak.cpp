#include "kernels/cpu/instruction_peak.h"

#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdint>

namespace linspec::kernels::cpu {
namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

constexpr long kChunk = 1 << 16;  // loop trips between clock reads

// The lanes of a result summed through memory (GCC 12's reduce intrinsics warn about their own undefined halves).
__attribute__((target("avx512f"))) float lane_sum(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float s = 0;
  for (float x : lanes) s += x;
  return s;
}
__attribute__((target("avx512f"))) float lane_sum(__m512i v) { return lane_sum(_mm512_cvtepi32_ps(v)); }

// A kernel runs `trips` × 12 instructions `a = STEP(a)` on 12 independent accumulators (enough to hide the latency
// of one instruction behind the others) and returns a value that depends on every result, so nothing is optimised
// away.
#define LINSPEC_TWELVE(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define LINSPEC_PEAK_KERNEL(NAME, ISA, OPERAND)                               \
  __attribute__((target(ISA))) float NAME(long trips) {                       \
    const auto x = OPERAND;                                                   \
    LINSPEC_TWELVE(LINSPEC_INIT)                                              \
    for (long n = 0; n < trips; ++n) {                                        \
      LINSPEC_TWELVE(LINSPEC_STEP)                                            \
    }                                                                         \
    float s = 0;                                                              \
    LINSPEC_TWELVE(LINSPEC_SUM)                                               \
    return s;                                                                 \
  }
#define LINSPEC_SUM(i) s += lane_sum(a##i);

#define LINSPEC_INIT(i) __m512 a##i = _mm512_set1_ps(static_cast<float>(i));
#define LINSPEC_STEP(i) a##i = _mm512_fmadd_ps(a##i, x, x);
LINSPEC_PEAK_KERNEL(f32_fma, "avx512f", _mm512_set1_ps(0.999f))
#undef LINSPEC_STEP
#define LINSPEC_STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, x);
LINSPEC_PEAK_KERNEL(bf16_dot, "avx512f,avx512bf16", (__m512bh)_mm512_set1_epi32(0x3f803f80))  // bf16 pairs (1, 1)
#undef LINSPEC_STEP
#undef LINSPEC_INIT
#define LINSPEC_INIT(i) __m512i a##i = _mm512_set1_epi32(i);
#define LINSPEC_STEP(i) a##i = _mm512_dpbusd_epi32(a##i, x, x);
LINSPEC_PEAK_KERNEL(int8_dot, "avx512f,avx512vnni", _mm512_set1_epi32(0x01010101))
#undef LINSPEC_STEP
#undef LINSPEC_INIT
#undef LINSPEC_SUM
#undef LINSPEC_PEAK_KERNEL
#undef LINSPEC_TWELVE

// Every thread runs `kernel` for about `seconds`; instructions issued by all of them per nanosecond of the slowest.
double rate_per_ns(float (*kernel)(long), double seconds) {
  double instructions = 0, elapsed = 0;
  volatile float sink = 0;
#pragma omp parallel reduction(+ : instructions) reduction(max : elapsed)
  {
    kernel(kChunk);  // warm-up: clocks up, code in cache
    const double t0 = now_s();
    long trips = 0;
    float s = 0;
    while (now_s() - t0 < seconds) s += kernel(kChunk), trips += kChunk;
    elapsed = now_s() - t0;
    instructions = 12.0 * static_cast<double>(trips);
    sink = sink + s;
  }
  return instructions / (elapsed * 1e9);
}

}  // namespace

std::vector<InstructionPeak> measure_instruction_peaks(double seconds) {
  std::vector<InstructionPeak> out;
  auto add = [&](const char* kind, float (*kernel)(long), int flops) {
    const double per_ns = rate_per_ns(kernel, seconds);
    out.push_back({kind, per_ns, per_ns * flops, flops});
  };
  if (!__builtin_cpu_supports("avx512f")) return out;
  add("f32_fma", f32_fma, 32);  // 16 lanes × (multiply + add)
  if (__builtin_cpu_supports("avx512bf16")) add("bf16_dot", bf16_dot, 64);  // 16 lanes × 2 pairs × 2
  if (__builtin_cpu_supports("avx512vnni")) add("int8_dot", int8_dot, 128);  // 16 lanes × 4 bytes × 2
  return out;
}

}  // namespace linspec::kernels::cpu
