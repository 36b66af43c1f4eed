#include "adamw.hpp"

#include <cmath>

namespace est {

AdamWElement::AdamWElement(const AdamWStep& s)
    : lr(s.lr), b1(s.beta1), b2(s.beta2), eps(s.eps), wd(s.weight_decay), gs(s.grad_scale),
      c1(1.0f / (1.0f - std::pow(s.beta1, static_cast<float>(s.t)))),
      c2(1.0f / (1.0f - std::pow(s.beta2, static_cast<float>(s.t)))) {}

void adamw_update(VecF param, VecF m, VecF v, CVecF grad, const AdamWStep& s) {
  const AdamWElement update(s);
  Kokkos::parallel_for(
      "adamw_update", RangePolicy(0, param.extent(0)),
      KOKKOS_LAMBDA(const int64_t i) { update(param(i), m(i), v(i), grad(i)); });
}

void adamw_update_zero_grad(VecF param, VecF m, VecF v, const AdamWStep& s) {
  const AdamWElement update(s);
  Kokkos::parallel_for(
      "adamw_update_zero_grad", RangePolicy(0, param.extent(0)),
      KOKKOS_LAMBDA(const int64_t i) { update(param(i), m(i), v(i), 0.0f); });
}

// A team per row: coalesced on GPUs, a contiguous (vectorised) inner loop on CPUs.
void adamw_update_rows(MatF param, MatF m, MatF v, CMatF grad, Vec<const int> map, bool zero_grad,
                       const AdamWStep& s) {
  const AdamWElement update(s);
  const int rows = static_cast<int>(param.extent(0)), cols = static_cast<int>(param.extent(1));
  Kokkos::parallel_for(
      "adamw_update_rows", teams_per_row(rows), KOKKOS_LAMBDA(const TeamMember& team) {
        const int r = team.league_rank();
        const int k = map(r);
        if (k < 0 && !zero_grad) return;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, cols), [&](const int c) {
          update(param(r, c), m(r, c), v(r, c), k >= 0 ? grad(k, c) : 0.0f);
        });
      });
}

}  // namespace est
