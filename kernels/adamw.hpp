#pragma once
#include "views.hpp"

namespace est {

struct AdamWStep {
  float lr;
  float beta1;
  float beta2;
  float eps;
  float weight_decay;
  float grad_scale;  // global-norm clipping factor, 1 when not clipping
  int t;             // 1-based step count for bias correction
};

// Decoupled weight decay (Loshchilov & Hutter): p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p).
void adamw_update(VecF param, VecF m, VecF v, CVecF grad, const AdamWStep& s);

}  // namespace est
