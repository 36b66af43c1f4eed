#pragma once
#include "math.hpp"
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

// The per-element update with its bias corrections folded in once per launch.
struct AdamWElement {
  float lr, b1, b2, eps, wd, gs, c1, c2;
  explicit AdamWElement(const AdamWStep& s);
  // Decoupled weight decay (Loshchilov & Hutter): p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p).
  KOKKOS_INLINE_FUNCTION void operator()(float& p, float& m, float& v, float grad) const {
    const float g = grad * gs;
    m = b1 * m + (1.0f - b1) * g;
    v = b2 * v + (1.0f - b2) * g * g;
    p -= lr * (m * c1 / (kmath::sqrt(v * c2) + eps) + wd * p);
  }
};

void adamw_update(VecF param, VecF m, VecF v, CVecF grad, const AdamWStep& s);
// A step with a zero gradient (a parameter outside the subnetwork under est.inactive: zero_grad).
void adamw_update_zero_grad(VecF param, VecF m, VecF v, const AdamWStep& s);

// A (rows, cols) tensor of which only some rows got a gradient, stored compactly: map[r] is the compact row of
// full row r, or -1. Rows without a gradient are left untouched, or (zero_grad) stepped with a zero gradient.
void adamw_update_rows(MatF param, MatF m, MatF v, CMatF grad, Vec<const int> map, bool zero_grad,
                       const AdamWStep& s);

}  // namespace est
