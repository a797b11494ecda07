// Counter-based random numbers (Philox-4x32-10, Salmon et al. 2011). The whole state of a stream is
// (seed, counter): saving those two integers and restoring them resumes the stream exactly, and any
// position can be reached without replaying the draws before it.
#pragma once
#include <array>
#include <cstdint>

namespace linspec {

// One Philox-4x32-10 block: four 32-bit outputs for a 128-bit counter and a 64-bit key.
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

class Philox {
 public:
  explicit Philox(uint64_t seed = 0, uint64_t counter = 0) : seed_(seed), counter_(counter) {}

  uint32_t next_u32();
  uint64_t next_u64();
  double uniform();          // [0, 1) with 53 random bits
  float uniform_f32();       // [0, 1)
  double normal();           // standard normal (Box-Muller on two uniforms)
  uint64_t below(uint64_t n);  // uniform integer in [0, n), rejection-sampled (no modulo bias)

  // The state to save (counter counts 32-bit draws) and restore.
  uint64_t seed() const { return seed_; }
  uint64_t counter() const { return counter_; }
  void set_state(uint64_t seed, uint64_t counter) { seed_ = seed, counter_ = counter; }
  // An independent stream for (stream id), e.g. per rank or per layer, from the same seed.
  Philox fork(uint64_t stream_id) const;

 private:
  uint64_t seed_;
  uint64_t counter_;  // index of the next 32-bit output
};

}  // namespace linspec
