#pragma once
#include "views.hpp"

namespace est {

// Columns per work item: on the host a wide strip, so rows stream through contiguously into accumulators that
// stay in L1 and the inner loop vectorises; on a GPU one column per thread keeps loads coalesced across threads.
constexpr int64_t kColumnStrip = kHostKernels ? 256 : 1;

// out(c) = sum over rows i of term(i, c), rows in order (deterministic, no atomics).
template <class Term>
void column_sums(const char* label, int64_t rows, int64_t cols, VecF out, Term term) {
  constexpr int64_t kLanes = kColumnStrip;
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
