#pragma once
#include <cmath>

namespace est {

// Linear warm-up to lr over `warmup` steps, then cosine decay to min_lr at the last step.
struct LrSchedule {
  float lr = 6e-4f;
  float min_lr = 6e-5f;
  int warmup = 0;
  int total = 1;

  float at(int step) const {  // step is 0-based
    if (step < warmup) return lr * static_cast<float>(step + 1) / static_cast<float>(warmup);
    const int decay_steps = total - warmup;
    if (decay_steps <= 1) return lr;
    const double progress = static_cast<double>(step - warmup) / static_cast<double>(decay_steps - 1);
    const double cosine = 0.5 * (1.0 + std::cos(3.14159265358979323846 * progress));
    return static_cast<float>(min_lr + (lr - min_lr) * cosine);
  }
};

}  // namespace est
