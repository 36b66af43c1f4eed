#include "reduce.hpp"

namespace est {

namespace {
// Lanes per work item: independent partial sums the compiler can keep in one vector register.
constexpr int64_t kLanes = 16;
}

double sum_of_squares(CVecF x) {
  const int64_t n = x.extent(0);
  const int64_t blocks = (n + kLanes - 1) / kLanes;
  double total = 0.0;
  Kokkos::parallel_reduce(
      "sum_of_squares", RangePolicy(0, blocks),
      KOKKOS_LAMBDA(const int64_t blk, double& acc) {
        const int64_t base = blk * kLanes;
        float s = 0.0f;
        if (base + kLanes <= n) {
          for (int64_t j = 0; j < kLanes; ++j) s += x(base + j) * x(base + j);
        } else {
          for (int64_t j = base; j < n; ++j) s += x(j) * x(j);
        }
        acc += s;
      },
      total);
  return total;
}

}  // namespace est
