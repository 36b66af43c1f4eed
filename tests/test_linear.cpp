#include "linear.hpp"
#include "residual.hpp"
#include "test_util.hpp"

namespace est {
namespace {

TEST(Linear, ForwardAndBackwardMatchNaive) {
  const int N = 9, C = 13, OC = 7;
  auto x = test::randn(N * C, 1), w = test::randn(OC * C, 2), b = test::randn(OC, 3), dy = test::randn(N * OC, 4);
  Buffer xd = test::to_device(x), wd = test::to_device(w), bd = test::to_device(b), dyd = test::to_device(dy);
  Buffer y("y", N * OC), dx = test::to_device(test::randn(N * C, 8)), dw = test::to_device(test::randn(OC * C, 9)),
         db = test::to_device(test::randn(OC, 10));
  linear_forward(mat(y.data(), N, OC), cmat(xd.data(), N, C), cmat(wd.data(), OC, C), cvec(bd.data(), OC));
  linear_backward(mat(dx.data(), N, C), mat(dw.data(), OC, C), vec(db.data(), OC), cmat(dyd.data(), N, OC),
                  cmat(xd.data(), N, C), cmat(wd.data(), OC, C));
  std::vector<double> wy(N * OC), wdx(N * C, 0), wdw(OC * C, 0), wdb(OC, 0);
  for (int i = 0; i < N; ++i)
    for (int o = 0; o < OC; ++o) {
      double s = b[o];
      for (int c = 0; c < C; ++c) {
        s += double(x[i * C + c]) * w[o * C + c];
        wdx[i * C + c] += double(dy[i * OC + o]) * w[o * C + c];
        wdw[o * C + c] += double(dy[i * OC + o]) * x[i * C + c];
      }
      wy[i * OC + o] = s;
      wdb[o] += dy[i * OC + o];
    }
  test::expect_close(test::to_host(y), wy, 1e-5, 1e-5, "y");
  test::expect_close(test::to_host(dx), wdx, 1e-5, 1e-5, "dx overwritten");
  test::expect_close(test::to_host(dw), wdw, 1e-5, 1e-5, "dw overwritten");
  test::expect_close(test::to_host(db), wdb, 1e-5, 1e-5, "db overwritten");
}

TEST(Residual, AddsElementwise) {
  auto a = test::randn(50, 1), b = test::randn(50, 2);
  Buffer ad = test::to_device(a), bd = test::to_device(b), out("out", 50);
  residual_forward(mat(out.data(), 5, 10), cmat(ad.data(), 5, 10), cmat(bd.data(), 5, 10));
  std::vector<double> want(50);
  for (int i = 0; i < 50; ++i) want[i] = double(a[i]) + b[i];
  test::expect_close(test::to_host(out), want, 1e-7, 1e-7, "residual");
}

}  // namespace
}  // namespace est
