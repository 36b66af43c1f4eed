#include <cmath>

#include "gelu.hpp"
#include "test_util.hpp"

namespace est {
namespace {

double gelu(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }

TEST(Gelu, ForwardAndBackwardMatchNaive) {
  const int n = 1000;
  auto x = test::randn(n, 1, 3.0f), dy = test::randn(n, 2);
  Buffer xd = test::to_device(x), dyd = test::to_device(dy), y("y", n), dx("dx", n);
  gelu_forward(mat(y.data(), 1, n), cmat(xd.data(), 1, n));
  gelu_backward(mat(dx.data(), 1, n), cmat(xd.data(), 1, n), cmat(dyd.data(), 1, n));
  std::vector<double> wy(n), wdx(n);
  for (int i = 0; i < n; ++i) {
    const double h = 1e-5;
    wy[i] = gelu(x[i]);
    wdx[i] = (gelu(x[i] + h) - gelu(x[i] - h)) / (2 * h) * dy[i];
  }
  test::expect_close(test::to_host(y), wy, 1e-6, 1e-5, "gelu");
  test::expect_close(test::to_host(dx), wdx, 1e-5, 1e-4, "gelu'");
  // In place, as the model uses it.
  gelu_backward(mat(dyd.data(), 1, n), cmat(xd.data(), 1, n), cmat(dyd.data(), 1, n));
  test::expect_close(test::to_host(dyd), wdx, 1e-5, 1e-4, "gelu' in place");
}

}  // namespace
}  // namespace est
