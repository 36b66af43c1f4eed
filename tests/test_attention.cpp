#include <cmath>

#include "attention.hpp"
#include "test_util.hpp"

namespace est {
namespace {

// Naive causal attention in double: forward output and gradient of sum(atty * dy) w.r.t. qkv.
struct NaiveAttention {
  int B, T, NH, C, hs;
  std::vector<double> atty, dqkv;
  NaiveAttention(const std::vector<float>& qkv, const std::vector<float>& dy, int B_, int T_, int NH_, int C_)
      : B(B_), T(T_), NH(NH_), C(C_), hs(C_ / NH_), atty(B_ * T_ * C_, 0), dqkv(B_ * T_ * 3 * C_, 0) {
    const double scale = 1.0 / std::sqrt(double(hs));
    auto q = [&](int b, int t, int h, int d) { return double(qkv[(b * T + t) * 3 * C + h * hs + d]); };
    auto k = [&](int b, int t, int h, int d) { return double(qkv[(b * T + t) * 3 * C + C + h * hs + d]); };
    auto v = [&](int b, int t, int h, int d) { return double(qkv[(b * T + t) * 3 * C + 2 * C + h * hs + d]); };
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < NH; ++h)
        for (int t = 0; t < T; ++t) {
          std::vector<double> p(t + 1), dp(t + 1);
          double mx = -1e300, sum = 0;
          for (int j = 0; j <= t; ++j) {
            double s = 0;
            for (int d = 0; d < hs; ++d) s += q(b, t, h, d) * k(b, j, h, d);
            p[j] = s * scale;
            mx = std::max(mx, p[j]);
          }
          for (int j = 0; j <= t; ++j) sum += (p[j] = std::exp(p[j] - mx));
          for (int j = 0; j <= t; ++j) p[j] /= sum;
          for (int d = 0; d < hs; ++d) {
            double s = 0;
            for (int j = 0; j <= t; ++j) s += p[j] * v(b, j, h, d);
            atty[(b * T + t) * C + h * hs + d] = s;
          }
          // backward
          double dot = 0;
          for (int j = 0; j <= t; ++j) {
            double s = 0;
            for (int d = 0; d < hs; ++d) {
              const double g = dy[(b * T + t) * C + h * hs + d];
              s += g * v(b, j, h, d);
              dqkv[(b * T + j) * 3 * C + 2 * C + h * hs + d] += p[j] * g;
            }
            dp[j] = s;
            dot += p[j] * s;
          }
          for (int j = 0; j <= t; ++j) {
            const double ds = p[j] * (dp[j] - dot) * scale;
            for (int d = 0; d < hs; ++d) {
              dqkv[(b * T + t) * 3 * C + h * hs + d] += ds * k(b, j, h, d);
              dqkv[(b * T + j) * 3 * C + C + h * hs + d] += ds * q(b, t, h, d);
            }
          }
        }
  }
};

TEST(Attention, ForwardAndBackwardMatchNaive) {
  const int B = 2, T = 7, NH = 3, C = 12;
  auto qkv = test::randn(B * T * 3 * C, 1), dy = test::randn(B * T * C, 2);
  NaiveAttention ref(qkv, dy, B, T, NH, C);
  Buffer qkvd = test::to_device(qkv), dyd = test::to_device(dy), atty("atty", B * T * C), att("att", B * NH * T * T);
  Buffer dqkv = test::to_device(test::randn(B * T * 3 * C, 3)), datt("datt", B * NH * T * T);
  attention_forward(mat(atty.data(), B * T, C), mat(att.data(), B * NH * T, T), cmat(qkvd.data(), B * T, 3 * C), B,
                    T, NH);
  test::expect_close(test::to_host(atty), ref.atty, 1e-5, 1e-5, "atty");
  // The stored probabilities are causal: zero above the diagonal, rows sum to one.
  auto a = test::to_host(att);
  for (int r = 0; r < B * NH * T; ++r) {
    double s = 0;
    for (int j = 0; j < T; ++j) {
      if (j > r % T) {
        EXPECT_EQ(a[r * T + j], 0.0f);
      }
      s += a[r * T + j];
    }
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
  attention_backward(mat(dqkv.data(), B * T, 3 * C), mat(datt.data(), B * NH * T, T), cmat(dyd.data(), B * T, C),
                     cmat(att.data(), B * NH * T, T), cmat(qkvd.data(), B * T, 3 * C), B, T, NH);
  test::expect_close(test::to_host(dqkv), ref.dqkv, 1e-5, 1e-4, "dqkv");
}

}  // namespace
}  // namespace est
