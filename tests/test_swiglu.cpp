#include <cmath>

#include "swiglu.hpp"
#include "test_util.hpp"

namespace est {
namespace {

double swiglu(double g, double u) { return g / (1 + std::exp(-g)) * u; }

TEST(SwiGlu, ForwardAndBackwardMatchNaive) {
  const int N = 5, M = 37;
  auto h = test::randn(N * 2 * M, 1, 3.0f), dy = test::randn(N * M, 2);
  Buffer hd = test::to_device(h), dyd = test::to_device(dy), y("y", N * M);
  Buffer dh = test::to_device(test::randn(N * 2 * M, 3));
  swiglu_forward(mat(y.data(), N, M), cmat(hd.data(), N, 2 * M));
  swiglu_backward(mat(dh.data(), N, 2 * M), cmat(dyd.data(), N, M), cmat(hd.data(), N, 2 * M));

  std::vector<double> wy(N * M), wdh(N * 2 * M);
  const double e = 1e-6;
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < M; ++j) {
      const double g = h[i * 2 * M + j], u = h[i * 2 * M + M + j], d = dy[i * M + j];
      wy[i * M + j] = swiglu(g, u);
      wdh[i * 2 * M + j] = (swiglu(g + e, u) - swiglu(g - e, u)) / (2 * e) * d;
      wdh[i * 2 * M + M + j] = (swiglu(g, u + e) - swiglu(g, u - e)) / (2 * e) * d;
    }
  test::expect_close(test::to_host(y), wy, 1e-6, 1e-5, "silu(gate) * up");
  test::expect_close(test::to_host(dh), wdh, 1e-5, 1e-4, "[dgate | dup] overwritten");
}

}  // namespace
}  // namespace est
