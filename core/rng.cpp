#include "core/rng.h"

#include <cmath>

#include "kernels/philox.h"

namespace linspec {

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key) {
  uint32_t c[4] = {counter[0], counter[1], counter[2], counter[3]};
  kernels::philox4x32_10(c, key[0], key[1]);
  return {c[0], c[1], c[2], c[3]};
}

uint32_t Philox::next_u32() {
  const uint64_t block = counter_ >> 2;
  const auto out = philox4x32({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u},
                              {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)});
  return out[counter_++ & 3];
}

uint64_t Philox::next_u64() {
  const uint64_t hi = next_u32();
  return (hi << 32) | next_u32();
}

double Philox::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
float Philox::uniform_f32() { return static_cast<float>(next_u32() >> 8) * 0x1.0p-24f; }

double Philox::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

uint64_t Philox::below(uint64_t n) {
  if (n <= 1) return 0;
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

Philox Philox::fork(uint64_t stream_id) const {
  // Mix the stream id into the key; outputs of distinct keys are independent streams.
  auto mixed = philox4x32({static_cast<uint32_t>(stream_id), static_cast<uint32_t>(stream_id >> 32), 0x5EEDu, 0u},
                          {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)});
  return Philox((static_cast<uint64_t>(mixed[0]) << 32) | mixed[1], 0);
}

}  // namespace linspec
