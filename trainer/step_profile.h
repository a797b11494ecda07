// Where a training step goes and how far it is from this machine's GEMM ceiling: the op profile of a step
// (model/op_profile.h) grouped into op families, the GEMMs grouped by shape, and the FLOPs the workload needs
// (trainer/flop_count.h) over the GEMM rate measured in the same run. Printed by `bench train` (`--profile` for the
// tables) and by `train` every log.profile_every steps.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/device.h"
#include "model/op_profile.h"
#include "trainer/flop_count.h"

namespace linspec::trainer {

// The backend's own GEMM rate on `device`: C[n, n] = A · B, best of `reps` after a warm-up call, per kind:
// f32, bf16 (bf16 operands), f32_via_bf16 (f32 operands rounded on the fly: the training path at bf16). `bench gemm`
// prints these; a kind the backend lacks is left out.
struct GemmRate {
  std::string kind;
  int64_t n = 0, reps = 0;
  double seconds = 0, gflops = 0;
};
std::vector<GemmRate> measure_gemm_rates(Device device, int64_t n, int64_t reps);
// The ceiling for training at `precision` (fp32 | bf16): f32's rate, or the better of the two bf16 kinds.
double gemm_ceiling_gflops(const std::vector<GemmRate>& rates, const std::string& precision);

// One step's profile, per-step averages: regions, the step's phases, the workload's FLOPs (all micro-batches of this
// rank) and the ceiling.
struct StepProfileInput {
  const OpProfile* profile = nullptr;
  double step_s = 0, optimizer_s = 0;
  StepFlops flops;            // one micro-batch
  int64_t micro_batches = 1;  // per step on this rank
  double ceiling_gflops = 0;  // 0: not measured
  std::string precision;
};

// Op families of the profile regions: projections (gemm.qkv/o/mlp), attention, norms + elementwise, LM head + loss,
// teacher (forward), draft heads, communication, optimizer, and the unattributed rest of the step.
struct FamilyRow {
  std::string family;
  double seconds = 0;
  double gemm_flops = 0;   // measured by the GEMM probe
  double model_flops = 0;  // flop_count's, for the same family
};
std::vector<FamilyRow> profile_families(const StepProfileInput& in);

// The workload summary (always): FLOPs per token and per step, achieved GFLOP/s, fraction of the ceiling, and the
// tokens/s the ceiling allows.
void print_flop_summary(std::ostream& os, const StepProfileInput& in);
// The op-family table; `detailed` adds the regions and the top GEMM shapes.
void print_step_profile(std::ostream& os, const StepProfileInput& in, bool detailed, size_t max_shapes = 12);
nlohmann::json step_profile_json(const StepProfileInput& in);

}  // namespace linspec::trainer
