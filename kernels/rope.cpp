#include "rope.hpp"

#include <cmath>
#include <vector>

namespace est {

namespace {

using HostMat = Kokkos::View<float**, Kokkos::LayoutRight, Kokkos::HostSpace>;

// sign = -1 turns by the opposite angle: a rotation's transpose is its inverse.
void rotate(const char* label, MatF x, int n_heads, int hs, CMatF cos, CMatF sin, float sign) {
  const int64_t N = x.extent(0), T = cos.extent(0), half = hs / 2;
  Kokkos::parallel_for(
      label, Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<3>>({0, 0, 0}, {N, int64_t(n_heads), half}),
      KOKKOS_LAMBDA(const int64_t i, const int64_t h, const int64_t d) {
        const int64_t t = i % T, lo = h * hs + d, hi = lo + half;
        const float c = cos(t, d), s = sign * sin(t, d);
        const float a = x(i, lo), b = x(i, hi);
        x(i, lo) = a * c - b * s;
        x(i, hi) = b * c + a * s;
      });
}

}  // namespace

// Made once per model, so on the host, in double: angles reach T radians, where float would lose digits.
void rope_tables(MatF cos, MatF sin, double theta) {
  const int64_t T = cos.extent(0), half = cos.extent(1);
  HostMat hcos("rope_cos", T, half), hsin("rope_sin", T, half);
  for (int64_t d = 0; d < half; ++d) {
    const double freq = std::pow(theta, -double(d) / double(half));
    for (int64_t t = 0; t < T; ++t) {
      hcos(t, d) = static_cast<float>(std::cos(double(t) * freq));
      hsin(t, d) = static_cast<float>(std::sin(double(t) * freq));
    }
  }
  Kokkos::deep_copy(cos, hcos);
  Kokkos::deep_copy(sin, hsin);
}

void rope_forward(MatF x, int n_heads, int hs, CMatF cos, CMatF sin) {
  rotate("rope_forward", x, n_heads, hs, cos, sin, 1.0f);
}

void rope_backward(MatF dx, int n_heads, int hs, CMatF cos, CMatF sin) {
  rotate("rope_backward", dx, n_heads, hs, cos, sin, -1.0f);
}

}  // namespace est
