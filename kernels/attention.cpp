#include "attention.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "gemm.hpp"
#include "math.hpp"
#include "team_reduce.hpp"

namespace est {

using gemm::Op;

void softmax_causal_forward(MatF att, int T) {
  const int rows = static_cast<int>(att.extent(0));
  Kokkos::parallel_for(
      "softmax_causal_forward", teams_per_row(rows), KOKKOS_LAMBDA(const TeamMember& team) {
        const int r = team.league_rank();
        const int n = r % T + 1;
        const float maxv = team_max(team, n, [&](const int j) { return att(r, j); });
        const float sum = team_sum(team, n, [&](const int j) {
          const float e = kmath::fast_exp(att(r, j) - maxv);
          att(r, j) = e;
          return e;
        });
        const float inv = 1.0f / sum;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, T),
                             [&](const int j) { att(r, j) = j < n ? att(r, j) * inv : 0.0f; });
      });
}

void softmax_causal_backward(MatF datt, CMatF att, int T, float scale) {
  const int rows = static_cast<int>(att.extent(0));
  Kokkos::parallel_for(
      "softmax_causal_backward", teams_per_row(rows), KOKKOS_LAMBDA(const TeamMember& team) {
        const int r = team.league_rank();
        const int n = r % T + 1;
        const float dot = team_sum(team, n, [&](const int j) { return att(r, j) * datt(r, j); });
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, T), [&](const int j) {
          datt(r, j) = j < n ? att(r, j) * (datt(r, j) - dot) * scale : 0.0f;
        });
      });
}

int64_t checked_head_size(const AttentionHeads& heads, int64_t y_cols, int64_t qkv_cols) {
  if (static_cast<int>(heads.kv_of.size()) != heads.q || heads.q <= 0 || heads.kv <= 0)
    throw std::invalid_argument("attention: kv_of must name a kv head for each query head");
  for (const int g : heads.kv_of)
    if (g < 0 || g >= heads.kv) throw std::invalid_argument("attention: kv head " + std::to_string(g) + " out of range");
  const int64_t hs = y_cols / heads.q;
  if (hs * heads.q != y_cols || (heads.q + 2 * heads.kv) * hs != qkv_cols)
    throw std::invalid_argument("attention: " + std::to_string(y_cols) + " output and " + std::to_string(qkv_cols) +
                                " qkv columns do not fit " + std::to_string(heads.q) + " query and " +
                                std::to_string(heads.kv) + " kv heads");
  return hs;
}

AttentionHeads AttentionHeads::multi_head(int n) { return grouped(n, n); }

AttentionHeads AttentionHeads::grouped(int q, int kv) {
  if (q <= 0 || kv <= 0 || q % kv != 0)
    throw std::invalid_argument("grouped attention: " + std::to_string(q) + " query heads over " +
                                std::to_string(kv) + " kv heads");
  AttentionHeads heads{q, kv, std::vector<int>(q)};
  for (int h = 0; h < q; ++h) heads.kv_of[h] = h / (q / kv);
  return heads;
}

namespace {

// Query heads h0, h0 + step, ... (count of them) reading kv heads g0, g0 + 1, ...: one strided-batched GEMM per
// product. accumulate: their kv heads' dk and dv already hold other query heads' share.
struct HeadBatch {
  int64_t h0, step, g0, count;
  bool accumulate;
};

// The regular grouping (multi-head included) is q/kv batches of kv heads each: offset r within every group. Any
// other map goes head by head.
std::vector<HeadBatch> head_batches(const AttentionHeads& heads) {
  bool regular = heads.q % heads.kv == 0;
  for (int h = 0; h < heads.q; ++h) regular = regular && heads.kv_of[h] == h / (heads.q / heads.kv);
  std::vector<HeadBatch> batches;
  if (regular) {
    const int G = heads.q / heads.kv;
    for (int r = 0; r < G; ++r) batches.push_back({r, G, 0, heads.kv, r > 0});
  } else {
    std::vector<bool> written(heads.kv, false);
    for (int h = 0; h < heads.q; ++h) {
      const int g = heads.kv_of[h];
      batches.push_back({h, 1, g, 1, written[g]});
      written[g] = true;
    }
  }
  return batches;
}

void zero_columns(MatF m, int64_t c0, int64_t n) {
  Kokkos::parallel_for(
      "attention_zero_unread_kv", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>({0, 0}, {int64_t(m.extent(0)), n}),
      KOKKOS_LAMBDA(const int64_t i, const int64_t c) { m(i, c0 + c) = 0.0f; });
}

}  // namespace

namespace {

// A product's operand: where head 0 of sequence 0 is, its leading dimension, and the strides from one head of
// the batch to the next and from one sequence to the next.
template <class F>
struct Strided {
  F* p;
  int64_t ld, head_stride, seq_stride;
};
using Operand = Strided<const float>;
using Result = Strided<float>;

// One product for `heads` heads of each of `seqs` sequences: strided-batched over whichever of the two is larger,
// a loop over the other. Backends run a batch one product per thread (oneDNN) or as one kernel (cuBLAS), so the
// larger batch keeps them busy: a sampled layer may keep a single KV group, a micro-batch a single sequence.
void each_head_and_sequence(Op ta, Op tb, int64_t M, int64_t N, int64_t K, float alpha, Operand a, Operand b,
                            float beta, Result c, int64_t heads, int64_t seqs) {
  if (seqs > heads) {
    for (int64_t i = 0; i < heads; ++i)
      gemm::sgemm_strided_batched(ta, tb, M, N, K, alpha, a.p + i * a.head_stride, a.ld, a.seq_stride,
                                  b.p + i * b.head_stride, b.ld, b.seq_stride, beta,
                                  c.p + i * c.head_stride, c.ld, c.seq_stride, seqs);
    return;
  }
  for (int64_t s = 0; s < seqs; ++s)
    gemm::sgemm_strided_batched(ta, tb, M, N, K, alpha, a.p + s * a.seq_stride, a.ld, a.head_stride,
                                b.p + s * b.seq_stride, b.ld, b.head_stride, beta,
                                c.p + s * c.seq_stride, c.ld, c.head_stride, heads);
}

}  // namespace

// Layout: a qkv row holds query head h at column h*hs, key head g at (q + g)*hs, value head g at (q + kv + g)*hs;
// att row b*q*T + h*T + t is query head h of sequence b at position t.
void attention_forward(MatF atty, MatF att, CMatF qkv, int B, int T, const AttentionHeads& heads) {
  const int64_t W = qkv.extent(1), hs = checked_head_size(heads, atty.extent(1), W), Cq = heads.q * hs;
  const int64_t Ckv = heads.kv * hs;
  const std::vector<HeadBatch> batches = head_batches(heads);
  const int64_t TT = int64_t(T) * T, seq = int64_t(T) * W, maps = heads.q * TT, out = int64_t(T) * Cq;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const float* q = qkv.data();
  const float* k = q + Cq;
  const float* v = k + Ckv;
  for (const HeadBatch& hb : batches) {
    const Operand qh{q + hb.h0 * hs, W, hb.step * hs, seq}, kh{k + hb.g0 * hs, W, hs, seq};
    const Result ah{att.data() + hb.h0 * TT, T, hb.step * TT, maps};
    // preatt[h] = scale * q_h k_g^T
    each_head_and_sequence(Op::N, Op::T, T, T, hs, scale, qh, kh, 0.0f, ah, hb.count, B);
  }
  softmax_causal_forward(att, T);
  for (const HeadBatch& hb : batches) {
    const Operand ah{att.data() + hb.h0 * TT, T, hb.step * TT, maps}, vh{v + hb.g0 * hs, W, hs, seq};
    const Result yh{atty.data() + hb.h0 * hs, Cq, hb.step * hs, out};
    each_head_and_sequence(Op::N, Op::N, T, hs, T, 1.0f, ah, vh, 0.0f, yh, hb.count, B);
  }
}

void attention_backward(MatF dqkv, MatF datt, CMatF datty, CMatF att, CMatF qkv, int B, int T,
                        const AttentionHeads& heads) {
  const int64_t W = qkv.extent(1), hs = checked_head_size(heads, datty.extent(1), W), Cq = heads.q * hs;
  const int64_t Ckv = heads.kv * hs;
  const std::vector<HeadBatch> batches = head_batches(heads);
  const int64_t TT = int64_t(T) * T, seq = int64_t(T) * W, maps = heads.q * TT, out = int64_t(T) * Cq;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const float *q = qkv.data(), *k = q + Cq, *v = k + Ckv;
  float *dq = dqkv.data(), *dk = dq + Cq, *dv = dk + Ckv;
  for (const HeadBatch& hb : batches) {
    const Operand dyh{datty.data() + hb.h0 * hs, Cq, hb.step * hs, out}, vh{v + hb.g0 * hs, W, hs, seq};
    const Operand ah{att.data() + hb.h0 * TT, T, hb.step * TT, maps};
    const Result dah{datt.data() + hb.h0 * TT, T, hb.step * TT, maps};
    // datt = dy v^T ; dv = att^T dy, summed over the query heads of the kv head
    each_head_and_sequence(Op::N, Op::T, T, T, hs, 1.0f, dyh, vh, 0.0f, dah, hb.count, B);
    each_head_and_sequence(Op::T, Op::N, T, hs, T, 1.0f, ah, dyh, hb.accumulate ? 1.0f : 0.0f,
                           {dv + hb.g0 * hs, W, hs, seq}, hb.count, B);
  }
  softmax_causal_backward(datt, att, T, scale);
  for (const HeadBatch& hb : batches) {
    const Operand dah{datt.data() + hb.h0 * TT, T, hb.step * TT, maps};
    // dq = dpreatt k ; dk = dpreatt^T q (scale already folded into dpreatt)
    each_head_and_sequence(Op::N, Op::N, T, hs, T, 1.0f, dah, {k + hb.g0 * hs, W, hs, seq}, 0.0f,
                           {dq + hb.h0 * hs, W, hb.step * hs, seq}, hb.count, B);
    each_head_and_sequence(Op::T, Op::N, T, hs, T, 1.0f, dah, {q + hb.h0 * hs, W, hb.step * hs, seq},
                           hb.accumulate ? 1.0f : 0.0f, {dk + hb.g0 * hs, W, hs, seq}, hb.count, B);
  }
  // dqkv is overwritten: a kv head no query head reads has no gradient.
  std::vector<bool> read(heads.kv, false);
  for (const int g : heads.kv_of) read[g] = true;
  for (int g = 0; g < heads.kv; ++g)
    if (!read[g]) {
      zero_columns(dqkv, Cq + g * hs, hs);
      zero_columns(dqkv, Cq + Ckv + g * hs, hs);
    }
}

void attention_forward(MatF atty, MatF att, CMatF qkv, int B, int T, int NH) {
  attention_forward(atty, att, qkv, B, T, AttentionHeads::multi_head(NH));
}

void attention_backward(MatF dqkv, MatF datt, CMatF datty, CMatF att, CMatF qkv, int B, int T, int NH) {
  attention_backward(dqkv, datt, datty, att, qkv, B, T, AttentionHeads::multi_head(NH));
}

}  // namespace est
