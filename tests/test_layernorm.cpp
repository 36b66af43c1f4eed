#include <cmath>

#include "layernorm.hpp"
#include "test_util.hpp"

namespace est {
namespace {

TEST(LayerNorm, ForwardAndBackwardMatchNaive) {
  const int N = 6, C = 33;
  auto x = test::randn(N * C, 1, 2.0f), w = test::randn(C, 2), b = test::randn(C, 3), dy = test::randn(N * C, 4);
  auto dx0 = test::randn(N * C, 5);
  Buffer xd = test::to_device(x), wd = test::to_device(w), bd = test::to_device(b), dyd = test::to_device(dy);
  Buffer y("y", N * C), mean("mean", N), rstd("rstd", N), dxd = test::to_device(dx0), dw("dw", C), db("db", C);
  layernorm_forward(mat(y.data(), N, C), vec(mean.data(), N), vec(rstd.data(), N), cmat(xd.data(), N, C),
                    cvec(wd.data(), C), cvec(bd.data(), C));
  layernorm_backward(mat(dxd.data(), N, C), vec(dw.data(), C), vec(db.data(), C), cmat(dyd.data(), N, C),
                     cmat(xd.data(), N, C), cvec(wd.data(), C), cvec(mean.data(), N), cvec(rstd.data(), N));

  std::vector<double> want_y(N * C), want_dx(dx0.begin(), dx0.end()), want_dw(C, 0), want_db(C, 0);
  for (int i = 0; i < N; ++i) {
    double m = 0, v = 0;
    for (int c = 0; c < C; ++c) m += x[i * C + c];
    m /= C;
    for (int c = 0; c < C; ++c) v += (x[i * C + c] - m) * (x[i * C + c] - m);
    const double r = 1.0 / std::sqrt(v / C + 1e-5);
    double a = 0, bb = 0;
    for (int c = 0; c < C; ++c) {
      const double n = (x[i * C + c] - m) * r;
      want_y[i * C + c] = n * w[c] + b[c];
      want_dw[c] += n * dy[i * C + c];
      want_db[c] += dy[i * C + c];
      a += w[c] * dy[i * C + c];
      bb += w[c] * dy[i * C + c] * n;
    }
    for (int c = 0; c < C; ++c) {
      const double n = (x[i * C + c] - m) * r;
      want_dx[i * C + c] += (w[c] * dy[i * C + c] - a / C - n * bb / C) * r;
    }
  }
  test::expect_close(test::to_host(y), want_y, 1e-5, 1e-5, "y");
  test::expect_close(test::to_host(dxd), want_dx, 1e-5, 1e-4, "dx accumulates");
  test::expect_close(test::to_host(dw), want_dw, 1e-5, 1e-4, "dweight");
  test::expect_close(test::to_host(db), want_db, 1e-5, 1e-4, "dbias");
}

}  // namespace
}  // namespace est
