#include "adamw.hpp"

#include <cmath>

#include "math.hpp"

namespace est {

void adamw_update(VecF param, VecF m, VecF v, CVecF grad, const AdamWStep& s) {
  const float b1 = s.beta1, b2 = s.beta2, eps = s.eps, lr = s.lr, wd = s.weight_decay, gs = s.grad_scale;
  const float c1 = 1.0f / (1.0f - std::pow(b1, static_cast<float>(s.t)));
  const float c2 = 1.0f / (1.0f - std::pow(b2, static_cast<float>(s.t)));
  Kokkos::parallel_for(
      "adamw_update", RangePolicy(0, param.extent(0)), KOKKOS_LAMBDA(const int64_t i) {
        const float g = grad(i) * gs;
        const float mi = b1 * m(i) + (1.0f - b1) * g;
        const float vi = b2 * v(i) + (1.0f - b2) * g * g;
        m(i) = mi;
        v(i) = vi;
        param(i) -= lr * (mi * c1 / (kmath::sqrt(vi * c2) + eps) + wd * param(i));
      });
}

}  // namespace est
