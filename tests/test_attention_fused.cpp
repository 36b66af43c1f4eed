#include <cmath>
#include <stdexcept>
#include <tuple>

#include "attention.hpp"
#include "attention_fused.hpp"
#include "test_util.hpp"

namespace est {
namespace {

// atty, the log-sum-exps (fused) and dqkv of one forward and backward pass; dqkv starts as garbage, since it must
// be overwritten.
struct Pass {
  std::vector<float> atty, lse, dqkv;
};

struct Inputs {
  int B, T, hs;
  AttentionHeads heads;
  int64_t W() const { return (heads.q + 2 * heads.kv) * int64_t(hs); }
  int64_t Cq() const { return heads.q * int64_t(hs); }
  int64_t BT() const { return int64_t(B) * T; }
  int64_t rows() const { return BT() * heads.q; }
};

Pass materialized(const Inputs& in, const std::vector<float>& qkv, const std::vector<float>& dy) {
  Buffer qkvd = test::to_device(qkv), dyd = test::to_device(dy), atty("atty", in.BT() * in.Cq());
  Buffer att("att", in.rows() * in.T), datt("datt", in.rows() * in.T);
  Buffer dqkv = test::to_device(test::randn(in.BT() * in.W(), 99));
  attention_forward(mat(atty.data(), in.BT(), in.Cq()), mat(att.data(), in.rows(), in.T),
                    cmat(qkvd.data(), in.BT(), in.W()), in.B, in.T, in.heads);
  attention_backward(mat(dqkv.data(), in.BT(), in.W()), mat(datt.data(), in.rows(), in.T),
                     cmat(dyd.data(), in.BT(), in.Cq()), cmat(att.data(), in.rows(), in.T),
                     cmat(qkvd.data(), in.BT(), in.W()), in.B, in.T, in.heads);
  return {test::to_host(atty), {}, test::to_host(dqkv)};
}

Pass fused(const Inputs& in, const std::vector<float>& qkv, const std::vector<float>& dy) {
  Buffer qkvd = test::to_device(qkv), dyd = test::to_device(dy), atty("atty", in.BT() * in.Cq());
  Buffer lse("lse", in.rows()), rowdot("rowdot", in.rows());
  Buffer dqkv = test::to_device(test::randn(in.BT() * in.W(), 99));
  attention_fused_forward(mat(atty.data(), in.BT(), in.Cq()), lse, cmat(qkvd.data(), in.BT(), in.W()), in.B, in.T,
                          in.heads);
  attention_fused_backward(mat(dqkv.data(), in.BT(), in.W()), rowdot, cmat(dyd.data(), in.BT(), in.Cq()),
                           cmat(atty.data(), in.BT(), in.Cq()), lse, cmat(qkvd.data(), in.BT(), in.W()), in.B, in.T,
                           in.heads);
  return {test::to_host(atty), test::to_host(lse), test::to_host(dqkv)};
}

// The log-sum-exp of each row's scaled causal scores, in double.
std::vector<double> naive_lse(const Inputs& in, const std::vector<float>& qkv) {
  std::vector<double> lse;
  const double scale = 1.0 / std::sqrt(double(in.hs));
  for (int b = 0; b < in.B; ++b)
    for (int h = 0; h < in.heads.q; ++h)
      for (int t = 0; t < in.T; ++t) {
        std::vector<double> s(t + 1);
        double mx = -1e300, sum = 0.0;
        for (int j = 0; j <= t; ++j) {
          for (int d = 0; d < in.hs; ++d)
            s[j] += double(qkv[(b * in.T + t) * in.W() + h * in.hs + d]) *
                    qkv[(b * in.T + j) * in.W() + (in.heads.q + in.heads.kv_of[h]) * in.hs + d];
          mx = std::max(mx, s[j] *= scale);
        }
        for (int j = 0; j <= t; ++j) sum += std::exp(s[j] - mx);
        lse.push_back(mx + std::log(sum));
      }
  return lse;
}

void expect_matches_materialized(const Inputs& in) {
  const auto qkv = test::randn(in.BT() * in.W(), 1), dy = test::randn(in.BT() * in.Cq(), 2);
  const Pass want = materialized(in, qkv, dy), got = fused(in, qkv, dy);
  test::expect_close(got.atty, test::to_double(want.atty), 1e-5, 1e-5, "atty");
  test::expect_close(got.lse, naive_lse(in, qkv), 1e-5, 1e-5, "lse");
  const int64_t W = in.W(), Cq = in.Cq(), Ckv = in.heads.kv * int64_t(in.hs);
  // dq, dk and dv apart, so a failure names its part.
  for (const auto& [part, c0, c1] :
       {std::tuple{"dq", int64_t(0), Cq}, std::tuple{"dk", Cq, Cq + Ckv}, std::tuple{"dv", Cq + Ckv, W}}) {
    std::vector<float> g;
    std::vector<double> w;
    for (int64_t r = 0; r < in.BT(); ++r)
      for (int64_t c = c0; c < c1; ++c) {
        g.push_back(got.dqkv[r * W + c]);
        w.push_back(want.dqkv[r * W + c]);
      }
    test::expect_close(g, w, 1e-5, 1e-5, part);
  }
}

TEST(AttentionFused, MultiHeadMatchesMaterialized) {
  expect_matches_materialized({2, 37, 8, AttentionHeads::multi_head(3)});
}

TEST(AttentionFused, GroupedQueryMatchesMaterialized) {
  expect_matches_materialized({2, 33, 16, AttentionHeads::grouped(4, 2)});
}

TEST(AttentionFused, MultiQueryMatchesMaterialized) {
  expect_matches_materialized({1, 20, 6, AttentionHeads::grouped(4, 1)});
}

// A sampled subset of query heads, and a map that is not even in head order.
TEST(AttentionFused, IrregularMapsMatchMaterialized) {
  expect_matches_materialized({2, 21, 4, AttentionHeads{3, 2, {0, 0, 1}}});
  expect_matches_materialized({2, 19, 4, AttentionHeads{4, 3, {2, 0, 2, 1}}});
}

// kv head 1 serves no query head: its dk and dv are zero, not what the buffer held.
TEST(AttentionFused, UnreadKvHeadGetsZeroGradient) {
  const Inputs in{2, 18, 4, AttentionHeads{3, 3, {0, 2, 2}}};
  expect_matches_materialized(in);
  const auto qkv = test::randn(in.BT() * in.W(), 1), dy = test::randn(in.BT() * in.Cq(), 2);
  const Pass got = fused(in, qkv, dy);
  for (int64_t r = 0; r < in.BT(); ++r)
    for (const int64_t c0 : {(in.heads.q + 1) * in.hs, (in.heads.q + in.heads.kv + 1) * in.hs})
      for (int d = 0; d < in.hs; ++d) ASSERT_EQ(got.dqkv[r * in.W() + c0 + d], 0.0f);
}

// Sequences that end on, just before and just after the edge of a key tile (16) or a team's rows (64), shorter
// than either, and of one token.
TEST(AttentionFused, SequenceLengthsAroundBlockEdges) {
  for (const int T : {1, 5, 15, 16, 17, 31, 32, 48, 63, 64, 65, 129}) {
    SCOPED_TRACE("T = " + std::to_string(T));
    expect_matches_materialized({2, T, 8, AttentionHeads::grouped(2, 1)});
  }
}

// GPT-2's head size, and the largest the kernels take.
TEST(AttentionFused, LargeHeadSizesMatchMaterialized) {
  expect_matches_materialized({1, 40, 64, AttentionHeads::multi_head(2)});
  expect_matches_materialized({1, 18, kFusedAttentionMaxHeadSize, AttentionHeads::multi_head(1)});
}

TEST(AttentionFused, RejectsHeadSizesAboveItsMaximum) {
  const Inputs in{1, 4, kFusedAttentionMaxHeadSize + 2, AttentionHeads::multi_head(1)};
  EXPECT_THROW(fused(in, test::randn(in.BT() * in.W(), 1), test::randn(in.BT() * in.Cq(), 2)), std::invalid_argument);
}

TEST(AttentionFused, RejectsHeadsThatDoNotFitTheShapes) {
  const Inputs in{1, 4, 4, AttentionHeads{2, 2, {0, 2}}};
  EXPECT_THROW(fused(in, test::randn(in.BT() * in.W(), 1), test::randn(in.BT() * in.Cq(), 2)), std::invalid_argument);
}

// Every sum runs in a fixed order: a second pass is bit for bit the first.
TEST(AttentionFused, IsDeterministic) {
  const Inputs in{2, 45, 8, AttentionHeads::grouped(4, 2)};
  const auto qkv = test::randn(in.BT() * in.W(), 1), dy = test::randn(in.BT() * in.Cq(), 2);
  const Pass first = fused(in, qkv, dy), second = fused(in, qkv, dy);
  EXPECT_EQ(first.atty, second.atty);
  EXPECT_EQ(first.lse, second.lse);
  EXPECT_EQ(first.dqkv, second.dqkv);
}

}  // namespace
}  // namespace est
