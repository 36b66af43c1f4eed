#pragma once
#include <cmath>

namespace est {

enum class LrDecay {
  cosine,  // from the end of warm-up to the last step
  wsd,     // warm-up, stable, decay: constant lr, then linear to min_lr over the run's last decay_fraction
};

// Linear warm-up to lr over `warmup` steps, then the decay, reaching min_lr at the last step. WSD keeps the full
// learning rate until the final decay, so a staged run's last (full-model) stage is not trained on a rate that
// cosine has already mostly decayed.
struct LrSchedule {
  float lr = 6e-4f;
  float min_lr = 6e-5f;
  int warmup = 0;
  int total = 1;
  LrDecay decay = LrDecay::cosine;
  double decay_fraction = 0.2;  // WSD only

  float at(int step) const {  // step is 0-based
    if (step < warmup) return lr * static_cast<float>(step + 1) / static_cast<float>(warmup);
    return decay == LrDecay::wsd ? wsd_at(step) : cosine_at(step);
  }

 private:
  float cosine_at(int step) const {
    const int decay_steps = total - warmup;
    if (decay_steps <= 1) return lr;
    const double progress = static_cast<double>(step - warmup) / static_cast<double>(decay_steps - 1);
    const double cosine = 0.5 * (1.0 + std::cos(3.14159265358979323846 * progress));
    return static_cast<float>(min_lr + (lr - min_lr) * cosine);
  }

  float wsd_at(int step) const {
    const int decay_steps = static_cast<int>(std::lround(decay_fraction * total));
    const int first = total - decay_steps;
    if (decay_steps <= 0 || step < first) return lr;
    const double progress = static_cast<double>(step - first + 1) / static_cast<double>(decay_steps);
    return static_cast<float>(lr - (lr - min_lr) * progress);
  }
};

}  // namespace est
