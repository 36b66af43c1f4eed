#include "layernorm.hpp"

#include "column_sums.hpp"
#include "math.hpp"
#include "team_reduce.hpp"

namespace est {

namespace {
constexpr float kEps = 1e-5f;
}

void layernorm_forward(MatF out, VecF mean, VecF rstd, CMatF inp, CVecF weight, CVecF bias) {
  const int N = static_cast<int>(inp.extent(0)), C = static_cast<int>(inp.extent(1));
  Kokkos::parallel_for(
      "layernorm_forward", teams_per_row(N), KOKKOS_LAMBDA(const TeamMember& team) {
        const int i = team.league_rank();
        const float m = team_sum(team, C, [&](const int c) { return inp(i, c); }) / C;
        const float var = team_sum(team, C, [&](const int c) { return (inp(i, c) - m) * (inp(i, c) - m); }) / C;
        const float r = 1.0f / kmath::sqrt(var + kEps);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, C),
                             [&](const int c) { out(i, c) = (inp(i, c) - m) * r * weight(c) + bias(c); });
        Kokkos::single(Kokkos::PerTeam(team), [&]() {
          mean(i) = m;
          rstd(i) = r;
        });
      });
}

void layernorm_backward(MatF dinp, VecF dweight, VecF dbias, CMatF dout, CMatF inp, CVecF weight, CVecF mean,
                        CVecF rstd) {
  const int N = static_cast<int>(inp.extent(0)), C = static_cast<int>(inp.extent(1));
  Kokkos::parallel_for(
      "layernorm_backward_dinp", teams_per_row(N), KOKKOS_LAMBDA(const TeamMember& team) {
        const int i = team.league_rank();
        const float m = mean(i), r = rstd(i);
        const float dnorm_mean = team_sum(team, C, [&](const int c) { return weight(c) * dout(i, c); }) / C;
        const float dnorm_norm_mean =
            team_sum(team, C, [&](const int c) { return weight(c) * dout(i, c) * (inp(i, c) - m) * r; }) / C;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, C), [&](const int c) {
          const float norm = (inp(i, c) - m) * r;
          const float dnorm = weight(c) * dout(i, c);
          dinp(i, c) += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * r;
        });
      });
  column_sums("layernorm_backward_dweight", N, C, dweight, KOKKOS_LAMBDA(const int64_t i, const int64_t c) {
    return (inp(i, c) - mean(i)) * rstd(i) * dout(i, c);
  });
  column_sums("layernorm_backward_dbias", N, C, dbias,
              KOKKOS_LAMBDA(const int64_t i, const int64_t c) { return dout(i, c); });
}

}  // namespace est
