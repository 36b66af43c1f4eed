#include <cmath>

#include "rope.hpp"
#include "test_util.hpp"

namespace est {
namespace {

double angle(int t, int i, int hs, double theta) { return t * std::pow(theta, -2.0 * i / hs); }

struct Tables {
  Buffer cos, sin;
  int T, half;
  Tables(int T_, int hs, double theta) : cos("cos", T_ * (hs / 2)), sin("sin", T_ * (hs / 2)), T(T_), half(hs / 2) {
    rope_tables(mat(cos.data(), T, half), mat(sin.data(), T, half), theta);
  }
  CMatF c() const { return cmat(cos.data(), T, half); }
  CMatF s() const { return cmat(sin.data(), T, half); }
};

TEST(Rope, TablesMatchAngles) {
  for (const double theta : {10000.0, 500000.0}) {
    const int T = 37, hs = 16;
    Tables tab(T, hs, theta);
    std::vector<double> wc(T * hs / 2), ws(T * hs / 2);
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < hs / 2; ++i) {
        wc[t * hs / 2 + i] = std::cos(angle(t, i, hs, theta));
        ws[t * hs / 2 + i] = std::sin(angle(t, i, hs, theta));
      }
    test::expect_close(test::to_host(tab.cos), wc, 1e-7, 0.0, "cos");
    test::expect_close(test::to_host(tab.sin), ws, 1e-7, 0.0, "sin");
  }
}

// Three sequences of T positions: row r is position r % T. The first n_heads heads turn, the columns after them
// (k and v heads of a qkv row, a ragged tail) keep their bits.
TEST(Rope, ForwardIsRotateHalfAtEachRowsPosition) {
  const int B = 3, T = 5, hs = 8, n_heads = 3, W = 5 * hs + 3, N = B * T;
  const double theta = 10000.0;
  Tables tab(T, hs, theta);
  auto x = test::randn(N * W, 1);
  Buffer xd = test::to_device(x);
  rope_forward(mat(xd.data(), N, W), n_heads, hs, tab.c(), tab.s());
  std::vector<double> want = test::to_double(x);
  for (int r = 0; r < N; ++r)
    for (int h = 0; h < n_heads; ++h)
      for (int i = 0; i < hs / 2; ++i) {
        const double a = angle(r % T, i, hs, theta), x0 = x[r * W + h * hs + i], x1 = x[r * W + h * hs + i + hs / 2];
        want[r * W + h * hs + i] = x0 * std::cos(a) - x1 * std::sin(a);
        want[r * W + h * hs + i + hs / 2] = x1 * std::cos(a) + x0 * std::sin(a);
      }
  const auto got = test::to_host(xd);
  test::expect_close(got, want, 1e-6, 1e-5, "rotated");
  for (int r = 0; r < N; ++r)
    for (int c = n_heads * hs; c < W; ++c) ASSERT_EQ(got[r * W + c], x[r * W + c]) << "row " << r << " col " << c;
}

TEST(Rope, BackwardIsTheTransposeAndInverse) {
  const int B = 2, T = 7, hs = 6, n_heads = 4, W = n_heads * hs, N = B * T;
  Tables tab(T, hs, 10000.0);
  auto x = test::randn(N * W, 2), y = test::randn(N * W, 3);
  Buffer xd = test::to_device(x), yd = test::to_device(y);
  rope_forward(mat(xd.data(), N, W), n_heads, hs, tab.c(), tab.s());
  const auto fx = test::to_host(xd);
  rope_backward(mat(yd.data(), N, W), n_heads, hs, tab.c(), tab.s());
  const auto by = test::to_host(yd);
  // <R x, y> = <x, R^T y>
  double lhs = 0, rhs = 0;
  for (int i = 0; i < N * W; ++i) {
    lhs += double(fx[i]) * y[i];
    rhs += double(x[i]) * by[i];
  }
  EXPECT_NEAR(lhs, rhs, 1e-4 * std::abs(lhs) + 1e-4);
  rope_backward(mat(xd.data(), N, W), n_heads, hs, tab.c(), tab.s());
  test::expect_close(test::to_host(xd), test::to_double(x), 1e-6, 1e-5, "backward(forward(x)) == x");
}

}  // namespace
}  // namespace est
