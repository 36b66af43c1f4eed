#include "swiglu.hpp"

#include "math.hpp"

namespace est {

// gate and up side by side: Llama's two input projections are then one GEMM into h.
void swiglu_forward(MatF out, CMatF h) {
  const int64_t N = out.extent(0), M = out.extent(1);
  Kokkos::parallel_for(
      "swiglu_forward", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>({0, 0}, {N, M}),
      KOKKOS_LAMBDA(const int64_t i, const int64_t j) {
        const float g = h(i, j);
        out(i, j) = g * kmath::sigmoid(g) * h(i, M + j);
      });
}

void swiglu_backward(MatF dh, CMatF dout, CMatF h) {
  const int64_t N = dout.extent(0), M = dout.extent(1);
  Kokkos::parallel_for(
      "swiglu_backward", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>({0, 0}, {N, M}),
      KOKKOS_LAMBDA(const int64_t i, const int64_t j) {
        const float g = h(i, j), u = h(i, M + j), d = dout(i, j);
        const float s = kmath::sigmoid(g);
        // d/dg [g s(g)] = s + g s (1 - s)
        dh(i, j) = d * u * s * (1.0f + g * (1.0f - s));
        dh(i, M + j) = d * g * s;
      });
}

}  // namespace est
