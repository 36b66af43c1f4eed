#include "crossentropy.hpp"

#include "math.hpp"
#include "team_reduce.hpp"

namespace est {

namespace {

// Row statistics of a softmax: max and sum of exp(x - max).
KOKKOS_INLINE_FUNCTION void softmax_stats(const TeamMember& team, const CMatF& logits, int i, int V, float& maxv,
                                          float& sum) {
  maxv = team_max(team, V, [&](const int j) { return logits(i, j); });
  const float mx = maxv;
  sum = team_sum(team, V, [&](const int j) { return kmath::fast_exp(logits(i, j) - mx); });
}

}  // namespace

double crossentropy_forward(CMatF logits, CVecI targets, int V) {
  const int N = static_cast<int>(logits.extent(0));
  double total = 0.0;
  Kokkos::parallel_reduce(
      "crossentropy_forward", teams_per_row(N),
      KOKKOS_LAMBDA(const TeamMember& team, double& acc) {
        const int i = team.league_rank();
        float maxv, sum;
        softmax_stats(team, logits, i, V, maxv, sum);
        Kokkos::single(Kokkos::PerTeam(team),
                       [&]() { acc += kmath::log(sum) + maxv - logits(i, targets(i)); });
      },
      total);
  return total;
}

double crossentropy_forward_backward(MatF logits, CVecI targets, int V, float dloss) {
  const int N = static_cast<int>(logits.extent(0)), Vp = static_cast<int>(logits.extent(1));
  CMatF in = logits;
  double total = 0.0;
  Kokkos::parallel_reduce(
      "crossentropy_forward_backward", teams_per_row(N),
      KOKKOS_LAMBDA(const TeamMember& team, double& acc) {
        const int i = team.league_rank();
        const int target = targets(i);
        float maxv, sum;
        softmax_stats(team, in, i, V, maxv, sum);
        const float target_logit = logits(i, target);
        team.team_barrier();
        const float inv = 1.0f / sum;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, Vp), [&](const int j) {
          const float p = j < V ? kmath::fast_exp(logits(i, j) - maxv) * inv : 0.0f;
          logits(i, j) = (p - (j == target ? 1.0f : 0.0f)) * dloss;
        });
        Kokkos::single(Kokkos::PerTeam(team), [&]() { acc += kmath::log(sum) + maxv - target_logit; });
      },
      total);
  return total;
}

}  // namespace est
