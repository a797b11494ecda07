// Learning-rate schedules. Pure functions of the step, so resuming needs only the step counter.
#pragma once
#include <string>

namespace linspec::trainer {

struct ScheduleConfig {
  std::string kind = "constant_with_warmup";  // constant | constant_with_warmup | cosine | linear
  double peak_lr = 2e-5;
  int warmup_steps = 0;
  int total_steps = 1;
  double min_lr_ratio = 0.0;  // floor of cosine / linear decay, as a fraction of peak
};

// lr for the optimizer update number `step` (0-based). Warm-up ramps linearly from peak/warmup to peak.
double learning_rate(const ScheduleConfig& c, int step);

}  // namespace linspec::trainer
