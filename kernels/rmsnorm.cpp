#include "rmsnorm.hpp"

#include "column_sums.hpp"
#include "math.hpp"
#include "team_reduce.hpp"

namespace est {

void rmsnorm_forward(MatF out, VecF rstd, CMatF inp, CVecF weight, float eps) {
  const int N = static_cast<int>(inp.extent(0)), C = static_cast<int>(inp.extent(1));
  Kokkos::parallel_for(
      "rmsnorm_forward", teams_per_row(N), KOKKOS_LAMBDA(const TeamMember& team) {
        const int i = team.league_rank();
        const float ms = team_sum(team, C, [&](const int c) { return inp(i, c) * inp(i, c); }) / C;
        const float r = 1.0f / kmath::sqrt(ms + eps);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, C),
                             [&](const int c) { out(i, c) = inp(i, c) * r * weight(c); });
        Kokkos::single(Kokkos::PerTeam(team), [&]() { rstd(i) = r; });
      });
}

// With norm = inp * rstd, the row's gradient is rstd * (dnorm - norm * mean(dnorm * norm)): LayerNorm's without
// the mean term, as nothing was subtracted.
void rmsnorm_backward(MatF dinp, VecF dweight, CMatF dout, CMatF inp, CVecF weight, CVecF rstd) {
  const int N = static_cast<int>(inp.extent(0)), C = static_cast<int>(inp.extent(1));
  Kokkos::parallel_for(
      "rmsnorm_backward_dinp", teams_per_row(N), KOKKOS_LAMBDA(const TeamMember& team) {
        const int i = team.league_rank();
        const float r = rstd(i);
        const float dnorm_norm_mean =
            team_sum(team, C, [&](const int c) { return weight(c) * dout(i, c) * inp(i, c) * r; }) / C;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, C), [&](const int c) {
          dinp(i, c) += (weight(c) * dout(i, c) - inp(i, c) * r * dnorm_norm_mean) * r;
        });
      });
  column_sums("rmsnorm_backward_dweight", N, C, dweight,
              KOKKOS_LAMBDA(const int64_t i, const int64_t c) { return inp(i, c) * rstd(i) * dout(i, c); });
}

}  // namespace est
