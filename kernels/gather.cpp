#include "gather.hpp"

namespace est {

void gather_rows(MatF dst, CMatF src, Vec<const int> index) {
  const int rows = static_cast<int>(dst.extent(0)), cols = static_cast<int>(dst.extent(1));
  Kokkos::parallel_for(
      "gather_rows", teams_per_row(rows), KOKKOS_LAMBDA(const TeamMember& team) {
        const int i = team.league_rank(), r = index(i);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, cols), [&](const int c) { dst(i, c) = src(r, c); });
      });
}

void scatter_rows(MatF dst, CMatF src, Vec<const int> index) {
  const int rows = static_cast<int>(src.extent(0)), cols = static_cast<int>(src.extent(1));
  Kokkos::parallel_for(
      "scatter_rows", teams_per_row(rows), KOKKOS_LAMBDA(const TeamMember& team) {
        const int i = team.league_rank(), r = index(i);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, cols), [&](const int c) { dst(r, c) = src(i, c); });
      });
}

}  // namespace est
