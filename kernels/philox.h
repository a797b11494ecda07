// Philox-4x32-10 (Salmon et al. 2011) for host and device code alike, so that a random mask drawn by a CUDA kernel
// has the same bits as the CPU's: element i of a keyed stream depends only on (key, i, lane), never on the thread
// that draws it. core/rng.h builds its sequential streams on the same block function.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define LINSPEC_HOST_DEVICE __host__ __device__
#else
#define LINSPEC_HOST_DEVICE
#endif

namespace linspec::kernels {

// One block: four 32-bit outputs (in c) for the 128-bit counter c and the 64-bit key (k0, k1).
LINSPEC_HOST_DEVICE inline void philox4x32_10(uint32_t (&c)[4], uint32_t k0, uint32_t k1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kMul0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kMul1) * c[2];
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k0, n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k1, n3 = static_cast<uint32_t>(p0);
    c[0] = n0, c[1] = n1, c[2] = n2, c[3] = n3;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
}

// A uniform in [0, 1) for element i of the stream keyed by `key` in `lane` (24 bits: exact in float and double).
LINSPEC_HOST_DEVICE inline double element_uniform(uint64_t key, uint64_t i, uint32_t lane) {
  uint32_t c[4] = {static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32), lane, 0x10A4u};
  philox4x32_10(c, static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32));
  return static_cast<double>(c[0] >> 8) * 0x1.0p-24;
}

// The lane of dropout masks (other lanes of the same key serve other draws, e.g. LoRA initialisation).
constexpr uint32_t kDropoutLane = 2;

}  // namespace linspec::kernels
