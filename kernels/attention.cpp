#include "attention.hpp"

#include <cmath>

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

void attention_forward(MatF atty, MatF att, CMatF qkv, int B, int T, int NH) {
  const int64_t C = atty.extent(1), hs = C / NH, C3 = 3 * C, TT = int64_t(T) * T;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  for (int b = 0; b < B; ++b) {
    const float* q = qkv.data() + int64_t(b) * T * C3;
    float* a = att.data() + int64_t(b) * NH * TT;
    // preatt[h] = scale * q_h k_h^T; the heads of one sequence are a strided batch.
    gemm::sgemm_strided_batched(Op::N, Op::T, T, T, hs, scale, q, C3, hs, q + C, C3, hs, 0.0f, a, T, TT, NH);
  }
  softmax_causal_forward(att, T);
  for (int b = 0; b < B; ++b) {
    const float* v = qkv.data() + int64_t(b) * T * C3 + 2 * C;
    const float* a = att.data() + int64_t(b) * NH * TT;
    gemm::sgemm_strided_batched(Op::N, Op::N, T, hs, T, 1.0f, a, T, TT, v, C3, hs, 0.0f,
                                atty.data() + int64_t(b) * T * C, C, hs, NH);
  }
}

void attention_backward(MatF dqkv, MatF datt, CMatF datty, CMatF att, CMatF qkv, int B, int T, int NH) {
  const int64_t C = datty.extent(1), hs = C / NH, C3 = 3 * C, TT = int64_t(T) * T;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  for (int b = 0; b < B; ++b) {
    const float* q = qkv.data() + int64_t(b) * T * C3;
    const float* dy = datty.data() + int64_t(b) * T * C;
    const float* a = att.data() + int64_t(b) * NH * TT;
    float* da = datt.data() + int64_t(b) * NH * TT;
    float* dq = dqkv.data() + int64_t(b) * T * C3;
    // datt = dy v^T ; dv = att^T dy
    gemm::sgemm_strided_batched(Op::N, Op::T, T, T, hs, 1.0f, dy, C, hs, q + 2 * C, C3, hs, 0.0f, da, T, TT, NH);
    gemm::sgemm_strided_batched(Op::T, Op::N, T, hs, T, 1.0f, a, T, TT, dy, C, hs, 0.0f, dq + 2 * C, C3, hs, NH);
  }
  softmax_causal_backward(datt, att, T, scale);
  for (int b = 0; b < B; ++b) {
    const float* q = qkv.data() + int64_t(b) * T * C3;
    const float* da = datt.data() + int64_t(b) * NH * TT;
    float* dq = dqkv.data() + int64_t(b) * T * C3;
    // dq = dpreatt k ; dk = dpreatt^T q (scale already folded into dpreatt)
    gemm::sgemm_strided_batched(Op::N, Op::N, T, hs, T, 1.0f, da, T, TT, q + C, C3, hs, 0.0f, dq, C3, hs, NH);
    gemm::sgemm_strided_batched(Op::T, Op::N, T, hs, T, 1.0f, da, T, TT, q, C3, hs, 0.0f, dq + C, C3, hs, NH);
  }
}

}  // namespace est
