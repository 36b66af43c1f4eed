#include "residual.hpp"

namespace est {

void residual_forward(MatF out, CMatF a, CMatF b, float scale) {
  const int64_t n = out.size();
  VecF o(out.data(), n);
  CVecF x(a.data(), n), y(b.data(), n);
  Kokkos::parallel_for(
      "residual_forward", RangePolicy(0, n), KOKKOS_LAMBDA(const int64_t i) { o(i) = x(i) + scale * y(i); });
}

void residual_branch_backward(MatF dbranch, CMatF dout, float scale) {
  const int64_t n = dout.size();
  VecF d(dbranch.data(), n);
  CVecF g(dout.data(), n);
  Kokkos::parallel_for(
      "residual_branch_backward", RangePolicy(0, n), KOKKOS_LAMBDA(const int64_t i) { d(i) = scale * g(i); });
}

}  // namespace est
