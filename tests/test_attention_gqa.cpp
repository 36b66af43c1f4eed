#include <cmath>
#include <tuple>

#include "attention.hpp"
#include "gemm.hpp"
#include "test_util.hpp"

namespace est {
namespace {

// Naive causal grouped-query attention in double: forward output and gradient of sum(atty * dy) w.r.t. qkv.
struct NaiveGqa {
  std::vector<double> atty, dqkv;
  NaiveGqa(const std::vector<float>& qkv, const std::vector<float>& dy, int B, int T, const AttentionHeads& heads,
           int hs) {
    const int nq = heads.q, W = (heads.q + 2 * heads.kv) * hs, Cq = nq * hs;
    atty.assign(size_t(B) * T * Cq, 0.0);
    dqkv.assign(size_t(B) * T * W, 0.0);
    const double scale = 1.0 / std::sqrt(double(hs));
    // column of element d of query head h, key head g, value head g
    auto qc = [&](int h, int d) { return h * hs + d; };
    auto kc = [&](int g, int d) { return (nq + g) * hs + d; };
    auto vc = [&](int g, int d) { return (nq + heads.kv + g) * hs + d; };
    auto at = [&](int b, int t, int c) { return size_t(b * T + t) * W + c; };
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < nq; ++h) {
        const int g = heads.kv_of[h];
        for (int t = 0; t < T; ++t) {
          std::vector<double> p(t + 1), dp(t + 1);
          double mx = -1e300, sum = 0;
          for (int j = 0; j <= t; ++j) {
            double s = 0;
            for (int d = 0; d < hs; ++d) s += double(qkv[at(b, t, qc(h, d))]) * qkv[at(b, j, kc(g, d))];
            p[j] = s * scale;
            mx = std::max(mx, p[j]);
          }
          for (int j = 0; j <= t; ++j) sum += (p[j] = std::exp(p[j] - mx));
          for (int j = 0; j <= t; ++j) p[j] /= sum;
          for (int d = 0; d < hs; ++d) {
            double s = 0;
            for (int j = 0; j <= t; ++j) s += p[j] * qkv[at(b, j, vc(g, d))];
            atty[size_t(b * T + t) * Cq + qc(h, d)] = s;
          }
          double dot = 0;
          for (int j = 0; j <= t; ++j) {
            double s = 0;
            for (int d = 0; d < hs; ++d) {
              const double gy = dy[size_t(b * T + t) * Cq + qc(h, d)];
              s += gy * qkv[at(b, j, vc(g, d))];
              dqkv[at(b, j, vc(g, d))] += p[j] * gy;
            }
            dp[j] = s;
            dot += p[j] * s;
          }
          for (int j = 0; j <= t; ++j) {
            const double ds = p[j] * (dp[j] - dot) * scale;
            for (int d = 0; d < hs; ++d) {
              dqkv[at(b, t, qc(h, d))] += ds * qkv[at(b, j, kc(g, d))];
              dqkv[at(b, j, kc(g, d))] += ds * qkv[at(b, t, qc(h, d))];
            }
          }
        }
      }
  }
};

struct Result {
  std::vector<float> atty, att, dqkv;
};

// attention_forward then attention_backward on random inputs (dqkv starts as garbage: it must be overwritten).
Result run(const std::vector<float>& qkv, const std::vector<float>& dy, int B, int T, const AttentionHeads& heads,
           int hs) {
  const int64_t W = (heads.q + 2 * heads.kv) * hs, Cq = heads.q * hs, BT = int64_t(B) * T;
  Buffer qkvd = test::to_device(qkv), dyd = test::to_device(dy), atty("atty", BT * Cq);
  Buffer att("att", BT * heads.q * T), datt("datt", BT * heads.q * T);
  Buffer dqkv = test::to_device(test::randn(BT * W, 99));
  attention_forward(mat(atty.data(), BT, Cq), mat(att.data(), B * heads.q * T, T), cmat(qkvd.data(), BT, W), B, T,
                    heads);
  attention_backward(mat(dqkv.data(), BT, W), mat(datt.data(), B * heads.q * T, T), cmat(dyd.data(), BT, Cq),
                     cmat(att.data(), B * heads.q * T, T), cmat(qkvd.data(), BT, W), B, T, heads);
  return {test::to_host(atty), test::to_host(att), test::to_host(dqkv)};
}

void expect_matches_naive(int B, int T, const AttentionHeads& heads, int hs) {
  const int64_t W = (heads.q + 2 * heads.kv) * hs, Cq = heads.q * hs;
  auto qkv = test::randn(B * T * W, 1), dy = test::randn(B * T * Cq, 2);
  const NaiveGqa ref(qkv, dy, B, T, heads, hs);
  const Result got = run(qkv, dy, B, T, heads, hs);
  test::expect_close(got.atty, ref.atty, 1e-5, 1e-5, "atty");
  // dq, dk and dv apart, so a failure names its part.
  for (const auto& [part, c0, c1] : {std::tuple{"dq", int64_t(0), Cq}, std::tuple{"dk", Cq, W - heads.kv * hs},
                                     std::tuple{"dv", W - heads.kv * hs, W}}) {
    std::vector<float> g;
    std::vector<double> w;
    for (int64_t r = 0; r < int64_t(B) * T; ++r)
      for (int64_t c = c0; c < c1; ++c) {
        g.push_back(got.dqkv[r * W + c]);
        w.push_back(ref.dqkv[r * W + c]);
      }
    test::expect_close(g, w, 1e-5, 1e-4, part);
  }
}

TEST(AttentionGqa, HeadMaps) {
  EXPECT_EQ(AttentionHeads::grouped(6, 3).kv_of, (std::vector<int>{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(AttentionHeads::multi_head(3).kv_of, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(AttentionHeads::multi_head(3).kv, 3);
  EXPECT_THROW(AttentionHeads::grouped(6, 4), std::invalid_argument);
}

TEST(AttentionGqa, RejectsHeadsThatDoNotFitTheShapes) {
  const int B = 1, T = 2, hs = 2;
  Buffer qkv("qkv", B * T * 8 * hs), atty("atty", B * T * 4 * hs), att("att", B * 4 * T * T);
  auto forward = [&](const AttentionHeads& heads, int64_t qkv_cols) {
    attention_forward(mat(atty.data(), B * T, 4 * hs), mat(att.data(), B * 4 * T, T),
                      cmat(qkv.data(), B * T, qkv_cols), B, T, heads);
  };
  EXPECT_NO_THROW(forward(AttentionHeads::grouped(4, 2), 8 * hs));
  EXPECT_THROW(forward(AttentionHeads::grouped(4, 2), 12 * hs), std::invalid_argument);  // multi-head's qkv
  EXPECT_THROW(forward(AttentionHeads{4, 2, {0, 0, 1}}, 8 * hs), std::invalid_argument);
  EXPECT_THROW(forward(AttentionHeads{4, 2, {0, 0, 1, 2}}, 8 * hs), std::invalid_argument);
}

TEST(AttentionGqa, FourQueryHeadsOverTwoMatchNaive) { expect_matches_naive(2, 7, AttentionHeads::grouped(4, 2), 4); }

TEST(AttentionGqa, SixQueryHeadsOverThreeMatchNaive) { expect_matches_naive(2, 5, AttentionHeads::grouped(6, 3), 2); }

// A sampled subset of query heads: not q/kv per group.
TEST(AttentionGqa, IrregularMapMatchesNaive) { expect_matches_naive(2, 6, AttentionHeads{3, 2, {0, 0, 1}}, 4); }

// kv head 1 serves no query head: its dk and dv are zero, not what the buffer held.
TEST(AttentionGqa, UnreadKvHeadGetsZeroGradient) {
  expect_matches_naive(2, 5, AttentionHeads{3, 3, {0, 2, 2}}, 2);
}

TEST(AttentionGqa, MultiQueryMatchesNaive) { expect_matches_naive(2, 3, AttentionHeads::grouped(4, 1), 3); }

// GPT-2's path as it was before grouped-query attention: one strided-batched GEMM per sequence per product.
Result per_sequence_multi_head(const std::vector<float>& qkv_h, const std::vector<float>& dy_h, int B, int T, int NH,
                               int64_t C) {
  using gemm::Op;
  const int64_t hs = C / NH, C3 = 3 * C, TT = int64_t(T) * T, BT = int64_t(B) * T;
  Buffer qkvd = test::to_device(qkv_h), dyd = test::to_device(dy_h), atty_b("atty", BT * C);
  Buffer att_b("att", BT * NH * T), datt_b("datt", BT * NH * T), dqkv_b = test::to_device(test::randn(BT * C3, 99));
  const float *qkv = qkvd.data(), *datty = dyd.data();
  float *atty = atty_b.data(), *att = att_b.data(), *datt = datt_b.data(), *dqkv = dqkv_b.data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  for (int b = 0; b < B; ++b) {
    const float* q = qkv + int64_t(b) * T * C3;
    gemm::sgemm_strided_batched(Op::N, Op::T, T, T, hs, scale, q, C3, hs, q + C, C3, hs, 0.0f,
                                att + int64_t(b) * NH * TT, T, TT, NH);
  }
  softmax_causal_forward(mat(att, BT * NH, T), T);
  for (int b = 0; b < B; ++b)
    gemm::sgemm_strided_batched(Op::N, Op::N, T, hs, T, 1.0f, att + int64_t(b) * NH * TT, T, TT,
                                qkv + int64_t(b) * T * C3 + 2 * C, C3, hs, 0.0f, atty + int64_t(b) * T * C, C, hs, NH);
  for (int b = 0; b < B; ++b) {
    const float* q = qkv + int64_t(b) * T * C3;
    const float* dy = datty + int64_t(b) * T * C;
    float* dq = dqkv + int64_t(b) * T * C3;
    gemm::sgemm_strided_batched(Op::N, Op::T, T, T, hs, 1.0f, dy, C, hs, q + 2 * C, C3, hs, 0.0f,
                                datt + int64_t(b) * NH * TT, T, TT, NH);
    gemm::sgemm_strided_batched(Op::T, Op::N, T, hs, T, 1.0f, att + int64_t(b) * NH * TT, T, TT, dy, C, hs, 0.0f,
                                dq + 2 * C, C3, hs, NH);
  }
  softmax_causal_backward(mat(datt, BT * NH, T), cmat(att, BT * NH, T), T, scale);
  for (int b = 0; b < B; ++b) {
    const float* q = qkv + int64_t(b) * T * C3;
    const float* da = datt + int64_t(b) * NH * TT;
    float* dq = dqkv + int64_t(b) * T * C3;
    gemm::sgemm_strided_batched(Op::N, Op::N, T, hs, T, 1.0f, da, T, TT, q + C, C3, hs, 0.0f, dq, C3, hs, NH);
    gemm::sgemm_strided_batched(Op::T, Op::N, T, hs, T, 1.0f, da, T, TT, q, C3, hs, 0.0f, dq + C, C3, hs, NH);
  }
  return {test::to_host(atty_b), test::to_host(att_b), test::to_host(dqkv_b)};
}

TEST(AttentionGqa, MultiHeadIsBitIdenticalToTheNhOverloadAndTheOldPath) {
  const int B = 2, T = 7, NH = 3;
  const int64_t C = 12, BT = int64_t(B) * T;
  auto qkv = test::randn(BT * 3 * C, 1), dy = test::randn(BT * C, 2);
  const Result heads = run(qkv, dy, B, T, AttentionHeads::multi_head(NH), int(C / NH));

  Buffer qkvd = test::to_device(qkv), dyd = test::to_device(dy), atty("atty", BT * C), att("att", BT * NH * T);
  Buffer datt("datt", BT * NH * T), dqkv = test::to_device(test::randn(BT * 3 * C, 99));
  attention_forward(mat(atty.data(), BT, C), mat(att.data(), BT * NH, T), cmat(qkvd.data(), BT, 3 * C), B, T, NH);
  attention_backward(mat(dqkv.data(), BT, 3 * C), mat(datt.data(), BT * NH, T), cmat(dyd.data(), BT, C),
                     cmat(att.data(), BT * NH, T), cmat(qkvd.data(), BT, 3 * C), B, T, NH);
  EXPECT_EQ(heads.atty, test::to_host(atty));
  EXPECT_EQ(heads.att, test::to_host(att));
  EXPECT_EQ(heads.dqkv, test::to_host(dqkv));

  const Result old = per_sequence_multi_head(qkv, dy, B, T, NH, C);
  EXPECT_EQ(heads.atty, old.atty);
  EXPECT_EQ(heads.att, old.att);
  EXPECT_EQ(heads.dqkv, old.dqkv);

  expect_matches_naive(B, T, AttentionHeads::multi_head(NH), int(C / NH));
}

}  // namespace
}  // namespace est
