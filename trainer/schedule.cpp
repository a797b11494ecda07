#include "trainer/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace linspec::trainer {

double learning_rate(const ScheduleConfig& c, int step) {
  if (c.kind == "constant") return c.peak_lr;
  if (c.warmup_steps > 0 && step < c.warmup_steps) return c.peak_lr * (step + 1) / c.warmup_steps;
  if (c.kind == "constant_with_warmup") return c.peak_lr;
  const int decay_steps = std::max(1, c.total_steps - c.warmup_steps);
  const double progress = std::clamp(static_cast<double>(step - c.warmup_steps) / decay_steps, 0.0, 1.0);
  const double floor = c.peak_lr * c.min_lr_ratio;
  if (c.kind == "cosine") return floor + (c.peak_lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
  if (c.kind == "linear") return floor + (c.peak_lr - floor) * (1.0 - progress);
  throw_input_error("train.schedule: unknown schedule '", c.kind, "'");
}

}  // namespace linspec::trainer
