#include "residual.hpp"

namespace est {

void residual_forward(MatF out, CMatF a, CMatF b) {
  const int64_t n = out.size();
  VecF o(out.data(), n);
  CVecF x(a.data(), n), y(b.data(), n);
  Kokkos::parallel_for(
      "residual_forward", RangePolicy(0, n), KOKKOS_LAMBDA(const int64_t i) { o(i) = x(i) + y(i); });
}

}  // namespace est
