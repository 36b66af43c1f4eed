#include <cmath>

#include "rmsnorm.hpp"
#include "test_util.hpp"

namespace est {
namespace {

// One row of RMSNorm in double.
std::vector<double> rmsnorm_row(const std::vector<double>& x, const std::vector<float>& w, double eps) {
  double ms = 0;
  for (const double v : x) ms += v * v;
  const double r = 1.0 / std::sqrt(ms / x.size() + eps);
  std::vector<double> y(x.size());
  for (size_t c = 0; c < x.size(); ++c) y[c] = x[c] * r * w[c];
  return y;
}

TEST(RmsNorm, ForwardAndBackwardMatchNaive) {
  const int N = 6, C = 33;
  const float eps = 1e-5f;
  auto x = test::randn(N * C, 1, 2.0f), w = test::randn(C, 2), dy = test::randn(N * C, 4);
  auto dx0 = test::randn(N * C, 5);
  Buffer xd = test::to_device(x), wd = test::to_device(w), dyd = test::to_device(dy);
  Buffer y("y", N * C), rstd("rstd", N), dxd = test::to_device(dx0), dw = test::to_device(test::randn(C, 6));
  rmsnorm_forward(mat(y.data(), N, C), vec(rstd.data(), N), cmat(xd.data(), N, C), cvec(wd.data(), C), eps);
  rmsnorm_backward(mat(dxd.data(), N, C), vec(dw.data(), C), cmat(dyd.data(), N, C), cmat(xd.data(), N, C),
                   cvec(wd.data(), C), cvec(rstd.data(), N));

  // dx by central differences of sum(y * dy) in double, on top of the gradient already there.
  std::vector<double> want_y(N * C), want_rstd(N), want_dx(dx0.begin(), dx0.end()), want_dw(C, 0);
  for (int i = 0; i < N; ++i) {
    std::vector<double> row(x.begin() + i * C, x.begin() + (i + 1) * C);
    const auto yr = rmsnorm_row(row, w, eps);
    double ms = 0;
    for (const double v : row) ms += v * v;
    want_rstd[i] = 1.0 / std::sqrt(ms / C + eps);
    for (int c = 0; c < C; ++c) {
      want_y[i * C + c] = yr[c];
      want_dw[c] += row[c] * want_rstd[i] * dy[i * C + c];
    }
    const double h = 1e-6;
    for (int c = 0; c < C; ++c) {
      auto plus = row, minus = row;
      plus[c] += h;
      minus[c] -= h;
      const auto yp = rmsnorm_row(plus, w, eps), ym = rmsnorm_row(minus, w, eps);
      double g = 0;
      for (int j = 0; j < C; ++j) g += (yp[j] - ym[j]) / (2 * h) * dy[i * C + j];
      want_dx[i * C + c] += g;
    }
  }
  test::expect_close(test::to_host(y), want_y, 1e-5, 1e-5, "y");
  test::expect_close(test::to_host(rstd), want_rstd, 1e-6, 1e-5, "rstd");
  test::expect_close(test::to_host(dxd), want_dx, 1e-5, 1e-4, "dx accumulates");
  test::expect_close(test::to_host(dw), want_dw, 1e-5, 1e-4, "dweight overwritten");
}

// Llama's eps and a row wide enough for the host's lanes and strips.
TEST(RmsNorm, WideRowsWithLlamaEps) {
  const int N = 3, C = 300;
  const float eps = 1e-6f;
  auto x = test::randn(N * C, 7, 0.01f), w = test::randn(C, 8);
  Buffer xd = test::to_device(x), wd = test::to_device(w), y("y", N * C), rstd("rstd", N);
  rmsnorm_forward(mat(y.data(), N, C), vec(rstd.data(), N), cmat(xd.data(), N, C), cvec(wd.data(), C), eps);
  std::vector<double> want(N * C);
  for (int i = 0; i < N; ++i) {
    const auto yr = rmsnorm_row(std::vector<double>(x.begin() + i * C, x.begin() + (i + 1) * C), w, eps);
    std::copy(yr.begin(), yr.end(), want.begin() + i * C);
  }
  test::expect_close(test::to_host(y), want, 1e-5, 1e-5, "y");
}

}  // namespace
}  // namespace est
