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
  if (static_cast<int>(heads.kv_of.size()) != heads.q || heads.q <= 0 || heads.kv <= 0)
    throw std::invalid_argument("attention: kv_of must name a kv head for each query head");
  bool regular = heads.q % heads.kv == 0;
  for (int h = 0; h < heads.q; ++h) {
    if (heads.kv_of[h] < 0 || heads.kv_of[h] >= heads.kv)
      throw std::invalid_argument("attention: kv head " + std::to_string(heads.kv_of[h]) + " out of range");
    regular = regular && heads.kv_of[h] == h / (heads.q / heads.kv);
  }
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

// hs from the output's width, checked against qkv's (q + 2 kv) heads.
int64_t head_size(const AttentionHeads& heads, int64_t y_cols, int64_t qkv_cols) {
  const int64_t hs = y_cols / heads.q;
  if (hs * heads.q != y_cols || (heads.q + 2 * heads.kv) * hs != qkv_cols)
    throw std::invalid_argument("attention: " + std::to_string(y_cols) + " output and " + std::to_string(qkv_cols) +
                                " qkv columns do not fit " + std::to_string(heads.q) + " query and " +
                                std::to_string(heads.kv) + " kv heads");
  return hs;
}

void zero_columns(MatF m, int64_t c0, int64_t n) {
  Kokkos::parallel_for(
      "attention_zero_unread_kv", Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2>>({0, 0}, {int64_t(m.extent(0)), n}),
      KOKKOS_LAMBDA(const int64_t i, const int64_t c) { m(i, c0 + c) = 0.0f; });
}

}  // namespace

void attention_forward(MatF atty, MatF att, CMatF qkv, int B, int T, const AttentionHeads& heads) {
  const std::vector<HeadBatch> batches = head_batches(heads);
  const int64_t W = qkv.extent(1), hs = head_size(heads, atty.extent(1), W), Cq = heads.q * hs, Ckv = heads.kv * hs;
  const int64_t TT = int64_t(T) * T;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  for (int b = 0; b < B; ++b) {
    const float* q = qkv.data() + int64_t(b) * T * W;
    const float* k = q + Cq;
    float* a = att.data() + int64_t(b) * heads.q * TT;
    // preatt[h] = scale * q_h k_g^T
    for (const HeadBatch& hb : batches)
      gemm::sgemm_strided_batched(Op::N, Op::T, T, T, hs, scale, q + hb.h0 * hs, W, hb.step * hs, k + hb.g0 * hs,
                                  W, hs, 0.0f, a + hb.h0 * TT, T, hb.step * TT, hb.count);
  }
  softmax_causal_forward(att, T);
  for (int b = 0; b < B; ++b) {
    const float* v = qkv.data() + int64_t(b) * T * W + Cq + Ckv;
    const float* a = att.data() + int64_t(b) * heads.q * TT;
    float* y = atty.data() + int64_t(b) * T * Cq;
    for (const HeadBatch& hb : batches)
      gemm::sgemm_strided_batched(Op::N, Op::N, T, hs, T, 1.0f, a + hb.h0 * TT, T, hb.step * TT, v + hb.g0 * hs, W,
                                  hs, 0.0f, y + hb.h0 * hs, Cq, hb.step * hs, hb.count);
  }
}

void attention_backward(MatF dqkv, MatF datt, CMatF datty, CMatF att, CMatF qkv, int B, int T,
                        const AttentionHeads& heads) {
  const std::vector<HeadBatch> batches = head_batches(heads);
  const int64_t W = qkv.extent(1), hs = head_size(heads, datty.extent(1), W), Cq = heads.q * hs, Ckv = heads.kv * hs;
  const int64_t TT = int64_t(T) * T;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  for (int b = 0; b < B; ++b) {
    const float* v = qkv.data() + int64_t(b) * T * W + Cq + Ckv;
    const float* dy = datty.data() + int64_t(b) * T * Cq;
    const float* a = att.data() + int64_t(b) * heads.q * TT;
    float* da = datt.data() + int64_t(b) * heads.q * TT;
    float* dv = dqkv.data() + int64_t(b) * T * W + Cq + Ckv;
    // datt = dy v^T ; dv = att^T dy, summed over the query heads of the kv head
    for (const HeadBatch& hb : batches) {
      gemm::sgemm_strided_batched(Op::N, Op::T, T, T, hs, 1.0f, dy + hb.h0 * hs, Cq, hb.step * hs, v + hb.g0 * hs,
                                  W, hs, 0.0f, da + hb.h0 * TT, T, hb.step * TT, hb.count);
      gemm::sgemm_strided_batched(Op::T, Op::N, T, hs, T, 1.0f, a + hb.h0 * TT, T, hb.step * TT, dy + hb.h0 * hs,
                                  Cq, hb.step * hs, hb.accumulate ? 1.0f : 0.0f, dv + hb.g0 * hs, W, hs, hb.count);
    }
  }
  softmax_causal_backward(datt, att, T, scale);
  for (int b = 0; b < B; ++b) {
    const float* q = qkv.data() + int64_t(b) * T * W;
    const float* k = q + Cq;
    const float* da = datt.data() + int64_t(b) * heads.q * TT;
    float* dq = dqkv.data() + int64_t(b) * T * W;
    float* dk = dq + Cq;
    // dq = dpreatt k ; dk = dpreatt^T q (scale already folded into dpreatt)
    for (const HeadBatch& hb : batches) {
      gemm::sgemm_strided_batched(Op::N, Op::N, T, hs, T, 1.0f, da + hb.h0 * TT, T, hb.step * TT, k + hb.g0 * hs, W,
                                  hs, 0.0f, dq + hb.h0 * hs, W, hb.step * hs, hb.count);
      gemm::sgemm_strided_batched(Op::T, Op::N, T, hs, T, 1.0f, da + hb.h0 * TT, T, hb.step * TT, q + hb.h0 * hs, W,
                                  hb.step * hs, hb.accumulate ? 1.0f : 0.0f, dk + hb.g0 * hs, W, hs, hb.count);
    }
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
