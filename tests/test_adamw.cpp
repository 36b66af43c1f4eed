#include <cmath>

#include "adamw.hpp"
#include "reduce.hpp"
#include "test_util.hpp"

namespace est {
namespace {

TEST(AdamW, TwoStepsMatchNaive) {
  const int n = 257;
  auto p = test::randn(n, 1), g1 = test::randn(n, 2), g2 = test::randn(n, 3);
  Buffer pd = test::to_device(p), m("m", n), v("v", n), gd1 = test::to_device(g1), gd2 = test::to_device(g2);
  const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, gs = 0.5f;
  adamw_update(vec(pd.data(), n), vec(m.data(), n), vec(v.data(), n), cvec(gd1.data(), n), {lr, b1, b2, eps, wd, gs, 1});
  adamw_update(vec(pd.data(), n), vec(m.data(), n), vec(v.data(), n), cvec(gd2.data(), n), {lr, b1, b2, eps, wd, gs, 2});
  std::vector<double> want(n);
  for (int i = 0; i < n; ++i) {
    double pp = p[i], mm = 0, vv = 0;
    for (int t = 1; t <= 2; ++t) {
      const double g = (t == 1 ? g1[i] : g2[i]) * gs;
      mm = b1 * mm + (1 - b1) * g;
      vv = b2 * vv + (1 - b2) * g * g;
      const double mh = mm / (1 - std::pow(b1, t)), vh = vv / (1 - std::pow(b2, t));
      pp -= lr * (mh / (std::sqrt(vh) + eps) + wd * pp);
    }
    want[i] = pp;
  }
  test::expect_close(test::to_host(pd), want, 1e-6, 1e-5, "param");
}

TEST(Reduce, SumOfSquaresHandlesPartialBlocks) {
  for (int n : {1, 15, 16, 17, 1000}) {
    auto x = test::randn(n, n);
    double want = 0;
    for (float v : x) want += double(v) * v;
    Buffer xd = test::to_device(x);
    EXPECT_NEAR(sum_of_squares(cvec(xd.data(), n)), want, 1e-5 * want) << n;
  }
}

}  // namespace
}  // namespace est
