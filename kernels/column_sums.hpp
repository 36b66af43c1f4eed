#pragma once
#include "views.hpp"

namespace est {

// out(c) = sum over rows i of term(i, c), rows in order (deterministic, no atomics). On the host a work item
// owns kLanes adjacent columns, so every row is one contiguous, vectorised read; on a GPU one thread per
// column keeps the loads coalesced across threads.
template <class Term>
void column_sums(const char* label, int64_t rows, int64_t cols, VecF out, Term term) {
  constexpr int64_t kLanes = Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible ? 16 : 1;
  const int64_t blocks = (cols + kLanes - 1) / kLanes;
  Kokkos::parallel_for(
      label, RangePolicy(0, blocks), KOKKOS_LAMBDA(const int64_t blk) {
        const int64_t c0 = blk * kLanes;
        if (c0 + kLanes <= cols) {
          float acc[kLanes] = {};
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < kLanes; ++j) acc[j] += term(i, c0 + j);
          for (int64_t j = 0; j < kLanes; ++j) out(c0 + j) = acc[j];
        } else {
          for (int64_t c = c0; c < cols; ++c) {
            float s = 0.0f;
            for (int64_t i = 0; i < rows; ++i) s += term(i, c);
            out(c) = s;
          }
        }
      });
}

}  // namespace est
