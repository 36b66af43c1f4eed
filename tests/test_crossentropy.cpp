#include <cmath>

#include "crossentropy.hpp"
#include "test_util.hpp"

namespace est {
namespace {

TEST(CrossEntropy, LossAndGradientMatchNaiveAndIgnorePadding) {
  const int N = 5, V = 19, Vp = 24;
  auto logits = test::randn(N * Vp, 1, 3.0f);
  for (int i = 0; i < N; ++i)
    for (int j = V; j < Vp; ++j) logits[i * Vp + j] = 100.0f;  // padding must not count, however large
  std::vector<int> tgt = {0, 18, 7, 3, 3};
  auto td = test::to_device(tgt);
  double want = 0;
  std::vector<double> wd(N * Vp, 0.0);
  const float dloss = 1.0f / N;
  for (int i = 0; i < N; ++i) {
    double mx = -1e300, s = 0;
    for (int j = 0; j < V; ++j) mx = std::max(mx, double(logits[i * Vp + j]));
    for (int j = 0; j < V; ++j) s += std::exp(logits[i * Vp + j] - mx);
    want += std::log(s) + mx - logits[i * Vp + tgt[i]];
    for (int j = 0; j < V; ++j) wd[i * Vp + j] = (std::exp(logits[i * Vp + j] - mx) / s - (j == tgt[i])) * dloss;
  }
  Buffer ld = test::to_device(logits);
  EXPECT_NEAR(crossentropy_forward(cmat(ld.data(), N, Vp), td, V), want, 1e-4);
  test::expect_close(test::to_host(ld), test::to_double(logits), 0, 0, "forward leaves logits");
  EXPECT_NEAR(crossentropy_forward_backward(mat(ld.data(), N, Vp), td, V, dloss), want, 1e-4);
  test::expect_close(test::to_host(ld), wd, 1e-7, 1e-5, "dlogits");
}

}  // namespace
}  // namespace est
