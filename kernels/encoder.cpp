#include "encoder.hpp"

#include "column_sums.hpp"

namespace est {

void encoder_forward(MatF out, CVecI tokens, CMatF wte, CMatF wpe, int T) {
  const int64_t N = out.extent(0), C = out.extent(1);
  Kokkos::parallel_for(
      "encoder_forward", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>({0, 0}, {N, C}),
      KOKKOS_LAMBDA(const int64_t i, const int64_t c) { out(i, c) = wte(tokens(i), c) + wpe(i % T, c); });
}

void encoder_backward(MatF dwte, MatF dwpe, CMatF dout, CVecI tokens, int T) {
  const int64_t N = dout.extent(0), C = dout.extent(1);
  const int64_t B = N / T;
  embedding_backward(dwte, dout, tokens);
  Kokkos::parallel_for(
      "encoder_backward_wpe", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>({0, 0}, {int64_t(dwpe.extent(0)), C}),
      KOKKOS_LAMBDA(const int64_t t, const int64_t c) {
        float s = 0.0f;
        if (t < T)
          for (int64_t b = 0; b < B; ++b) s += dout(b * T + t, c);
        dwpe(t, c) = s;
      });
}

void embedding_forward(MatF out, CVecI tokens, CMatF wte) {
  const int64_t N = out.extent(0), C = out.extent(1);
  Kokkos::parallel_for(
      "embedding_forward", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>({0, 0}, {N, C}),
      KOKKOS_LAMBDA(const int64_t i, const int64_t c) { out(i, c) = wte(tokens(i), c); });
}

void embedding_backward(MatF dwte, CMatF dout, CVecI tokens) {
  const int64_t N = dout.extent(0), C = dout.extent(1);
  // A strip of channels per work item walks the tokens in order: no atomics, bit-reproducible everywhere.
  const int64_t strips = (C + kColumnStrip - 1) / kColumnStrip;
  Kokkos::parallel_for(
      "embedding_backward", RangePolicy(0, strips), KOKKOS_LAMBDA(const int64_t strip) {
        const int64_t c0 = strip * kColumnStrip, c1 = c0 + kColumnStrip < C ? c0 + kColumnStrip : C;
        for (int64_t i = 0; i < N; ++i) {
          const int t = tokens(i);
          for (int64_t c = c0; c < c1; ++c) dwte(t, c) += dout(i, c);
        }
      });
}

}  // namespace est
