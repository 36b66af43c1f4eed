#pragma once
// Row reductions by one team (a row of a LayerNorm, a softmax, a cross-entropy). On a GPU the team's threads
// share the row through a TeamThreadRange reduction; on the host a team is one thread, and a float sum in one
// accumulator does not vectorise (the compiler may not reorder it), so the row is summed in kLanes independent
// partial sums instead. Both orders are fixed, so results are reproducible.
#include "views.hpp"

namespace est {

template <class F>
KOKKOS_INLINE_FUNCTION float team_sum(const TeamMember& team, int n, const F& f) {
  if constexpr (kHostKernels) {
    constexpr int kLanes = 16;
    float lanes[kLanes] = {};
    int j = 0;
    for (; j + kLanes <= n; j += kLanes)
      for (int k = 0; k < kLanes; ++k) lanes[k] += f(j + k);
    float s = 0.0f;
    for (; j < n; ++j) s += f(j);
    for (int k = 0; k < kLanes; ++k) s += lanes[k];
    return s;
  } else {
    float s = 0.0f;
    Kokkos::parallel_reduce(Kokkos::TeamThreadRange(team, n), [&](const int j, float& acc) { acc += f(j); }, s);
    return s;
  }
}

template <class F>
KOKKOS_INLINE_FUNCTION float team_max(const TeamMember& team, int n, const F& f) {
  if constexpr (kHostKernels) {
    constexpr int kLanes = 16;
    float lanes[kLanes];
    for (int k = 0; k < kLanes; ++k) lanes[k] = -3.0e38f;
    int j = 0;
    for (; j + kLanes <= n; j += kLanes)
      for (int k = 0; k < kLanes; ++k) lanes[k] = f(j + k) > lanes[k] ? f(j + k) : lanes[k];
    float m = -3.0e38f;
    for (; j < n; ++j) m = f(j) > m ? f(j) : m;
    for (int k = 0; k < kLanes; ++k) m = lanes[k] > m ? lanes[k] : m;
    return m;
  } else {
    float m = -3.0e38f;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, n), [&](const int j, float& acc) { acc = f(j) > acc ? f(j) : acc; },
        Kokkos::Max<float>(m));
    return m;
  }
}

}  // namespace est
