#include "attention_fused.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "math.hpp"
#include "team_reduce.hpp"

namespace est {

namespace {

// A team takes kRows queries (or keys) and walks the other side kBlock at a time through a tile in its scratch,
// transposed, so that a row's kBlock scores are a loop over the head dimension of kBlock-wide products: vectorised
// on a CPU, shared by the team's threads on a GPU. The more rows share a tile, the less its loading costs.
constexpr int kBlock = 16, kRows = 64;

// GCC unrolls a loop of kBlock iterations completely before its vectoriser sees it, and the SLP vectoriser that
// would pick the copies up is off (CMakeLists.txt): kept a loop, it vectorises.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define EST_TILE_LOOP _Pragma("GCC unroll 1")
#else
#define EST_TILE_LOOP
#endif

using Scratch = Kokkos::View<float*, ExecSpace::scratch_memory_space, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

// A GPU team has a thread per row of its block; a host team is one thread, which takes the block's rows in turn.
TeamPolicy block_teams(int64_t teams, int tiles, int hs) {
  const size_t bytes = tiles * Scratch::shmem_size(size_t(hs) * kBlock) + 2 * Scratch::shmem_size(kRows);
  return TeamPolicy(int(teams), kHostKernels ? 1 : kRows).set_scratch_size(0, Kokkos::PerTeam(bytes));
}

// Where things are: qkv and atty rows, the columns of a head, the row statistics.
struct Geometry {
  int T, q, kv, hs, blocks;  // blocks of kRows positions per sequence
  float scale;
  KOKKOS_INLINE_FUNCTION int64_t row(int b, int t) const { return int64_t(b) * T + t; }
  KOKKOS_INLINE_FUNCTION int qcol(int h) const { return h * hs; }
  KOKKOS_INLINE_FUNCTION int kcol(int g) const { return (q + g) * hs; }
  KOKKOS_INLINE_FUNCTION int vcol(int g) const { return (q + kv + g) * hs; }
  KOKKOS_INLINE_FUNCTION int64_t stat(int b, int h, int t) const { return (int64_t(b) * q + h) * T + t; }
};

Geometry geometry(const AttentionHeads& heads, int64_t y_cols, int64_t qkv_cols, int T) {
  const int hs = int(checked_head_size(heads, y_cols, qkv_cols));
  if (hs > kFusedAttentionMaxHeadSize)
    throw std::invalid_argument("fused attention: head size " + std::to_string(hs) + " is above its maximum of " +
                                std::to_string(kFusedAttentionMaxHeadSize));
  return {T, heads.q, heads.kv, hs, (T + kRows - 1) / kRows, 1.0f / std::sqrt(float(hs))};
}

Kokkos::View<int*, Kokkos::LayoutRight, MemSpace> device_kv_of(const AttentionHeads& heads) {
  Kokkos::View<int*, Kokkos::LayoutRight, MemSpace> kv_of("attention_kv_of", heads.kv_of.size());
  const auto host = Kokkos::create_mirror_view(kv_of);
  for (size_t h = 0; h < heads.kv_of.size(); ++h) host(h) = heads.kv_of[h];
  Kokkos::deep_copy(kv_of, host);
  return kv_of;
}

// Rows row0 .. row0 + kBlock - 1 of m's columns [c, c + hs) into tile (hs, kBlock); rows from n on are zero.
KOKKOS_INLINE_FUNCTION void load_transposed(const TeamMember& team, float* tile, CMatF m, int64_t row0, int n, int c,
                                            int hs) {
  Kokkos::parallel_for(Kokkos::TeamThreadRange(team, kBlock), [&](const int j) {
    const float* x = j < n ? &m(row0 + j, c) : nullptr;
    for (int d = 0; d < hs; ++d) tile[d * kBlock + j] = x ? x[d] : 0.0f;
  });
}

// s[j] = scale * <x, column j of tile> for a transposed tile (hs, kBlock). Four partial sums over d break the
// chain of dependent adds, so that a CPU overlaps them.
KOKKOS_INLINE_FUNCTION void tile_dots(float (&s)[kBlock], const float* x, const float* tile, int hs, float scale) {
  constexpr int kParts = 4;
  float part[kParts][kBlock] = {};
  int d = 0;
  for (; d + kParts <= hs; d += kParts)
    for (int u = 0; u < kParts; ++u)
      EST_TILE_LOOP for (int j = 0; j < kBlock; ++j) part[u][j] += x[d + u] * tile[(d + u) * kBlock + j];
  for (; d < hs; ++d)
    EST_TILE_LOOP for (int j = 0; j < kBlock; ++j) part[0][j] += x[d] * tile[d * kBlock + j];
  EST_TILE_LOOP for (int j = 0; j < kBlock; ++j) s[j] = scale * ((part[0][j] + part[1][j]) + (part[2][j] + part[3][j]));
}

// y += w[j] * (row row0 + j of m's columns [c, c + hs)) for j in [j0, j1), in that order.
KOKKOS_INLINE_FUNCTION void add_weighted_rows(float* KOKKOS_RESTRICT y, const float (&w)[kBlock], int j0, int j1,
                                              CMatF m, int64_t row0, int c, int hs) {
  for (int j = j0; j < j1; ++j) {
    const float* KOKKOS_RESTRICT x = &m(row0 + j, c);
    const float wj = w[j];
    for (int d = 0; d < hs; ++d) y[d] += wj * x[d];
  }
}

// A team per (sequence, query head, query block): the output accumulates in atty, rescaled whenever a key block
// raises a row's running maximum; the running maximum and sum live in scratch.
void online_softmax_forward(MatF atty, VecF lse, CMatF qkv, int B, const Geometry g, CVecI kv_of) {
  Kokkos::parallel_for(
      "attention_fused_forward", block_teams(int64_t(B) * g.q * g.blocks, 1, g.hs),
      KOKKOS_LAMBDA(const TeamMember& team) {
        const int qb = team.league_rank() % g.blocks, h = team.league_rank() / g.blocks % g.q;
        const int b = team.league_rank() / (g.blocks * g.q), kvh = kv_of(h), t0 = qb * kRows;
        const int nq = g.T - t0 < kRows ? g.T - t0 : kRows;
        const Scratch kt(team.team_scratch(0), g.hs * kBlock), mx(team.team_scratch(0), kRows),
            sum(team.team_scratch(0), kRows);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, nq), [&](const int r) {
          mx(r) = -3.0e38f;
          sum(r) = 0.0f;
          for (int d = 0; d < g.hs; ++d) atty(g.row(b, t0 + r), g.qcol(h) + d) = 0.0f;
        });
        for (int j0 = 0; j0 < t0 + nq; j0 += kBlock) {
          team.team_barrier();
          load_transposed(team, kt.data(), qkv, g.row(b, j0), g.T - j0, g.kcol(kvh), g.hs);
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, nq), [&](const int r) {
            const int t = t0 + r, n = t - j0 + 1 < kBlock ? t - j0 + 1 : kBlock;  // causal: keys j0 .. t
            if (n <= 0) return;
            float s[kBlock];
            tile_dots(s, &qkv(g.row(b, t), g.qcol(h)), kt.data(), g.hs, g.scale);
            float m = mx(r), l = 0.0f;
            for (int j = 0; j < kBlock; ++j) m = j < n && s[j] > m ? s[j] : m;
            EST_TILE_LOOP for (int j = 0; j < kBlock; ++j) {
              const float e = kmath::fast_exp(s[j] - m);  // for every j, then masked: no branch in the loop
              s[j] = j < n ? e : 0.0f;
            }
            for (int j = 0; j < kBlock; ++j) l += s[j];
            const float rescale = kmath::fast_exp(mx(r) - m);
            float* y = &atty(g.row(b, t), g.qcol(h));
            for (int d = 0; d < g.hs; ++d) y[d] *= rescale;
            add_weighted_rows(y, s, 0, n, qkv, g.row(b, j0), g.vcol(kvh), g.hs);
            sum(r) = sum(r) * rescale + l;
            mx(r) = m;
          });
        }
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, nq), [&](const int r) {
          const float inv = 1.0f / sum(r);
          for (int d = 0; d < g.hs; ++d) atty(g.row(b, t0 + r), g.qcol(h) + d) *= inv;
          lse(g.stat(b, h, t0 + r)) = mx(r) + kmath::log(sum(r));
        });
      });
}

// rowdot = <dO, O> per row (b, h, t): the softmax backward's correction, the same for every key of the row.
void output_row_dots(VecF rowdot, CMatF datty, CMatF atty, int B, const Geometry g) {
  Kokkos::parallel_for(
      "attention_fused_row_dots", teams_per_row(B * g.q * g.T), KOKKOS_LAMBDA(const TeamMember& team) {
        const int r = team.league_rank(), t = r % g.T, h = r / g.T % g.q, b = r / (g.T * g.q);
        const float* dy = &datty(g.row(b, t), g.qcol(h));
        const float* y = &atty(g.row(b, t), g.qcol(h));
        const float dot = team_sum(team, g.hs, [&](const int d) { return dy[d] * y[d]; });
        Kokkos::single(Kokkos::PerTeam(team), [&]() { rowdot(r) = dot; });
      });
}

// A team per (sequence, query head, query block): dq = sum over key blocks of ds k, accumulated in dqkv.
void query_gradients(MatF dqkv, CMatF datty, CVecF lse, CVecF rowdot, CMatF qkv, int B, const Geometry g,
                     CVecI kv_of) {
  Kokkos::parallel_for(
      "attention_fused_dq", block_teams(int64_t(B) * g.q * g.blocks, 2, g.hs), KOKKOS_LAMBDA(const TeamMember& team) {
        const int qb = team.league_rank() % g.blocks, h = team.league_rank() / g.blocks % g.q;
        const int b = team.league_rank() / (g.blocks * g.q), kvh = kv_of(h), t0 = qb * kRows;
        const int nq = g.T - t0 < kRows ? g.T - t0 : kRows;
        const Scratch kt(team.team_scratch(0), g.hs * kBlock), vt(team.team_scratch(0), g.hs * kBlock);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, nq), [&](const int r) {
          for (int d = 0; d < g.hs; ++d) dqkv(g.row(b, t0 + r), g.qcol(h) + d) = 0.0f;
        });
        for (int j0 = 0; j0 < t0 + nq; j0 += kBlock) {
          team.team_barrier();
          load_transposed(team, kt.data(), qkv, g.row(b, j0), g.T - j0, g.kcol(kvh), g.hs);
          load_transposed(team, vt.data(), qkv, g.row(b, j0), g.T - j0, g.vcol(kvh), g.hs);
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, nq), [&](const int r) {
            const int t = t0 + r, n = t - j0 + 1 < kBlock ? t - j0 + 1 : kBlock;  // causal: keys j0 .. t
            if (n <= 0) return;
            const float L = lse(g.stat(b, h, t)), D = rowdot(g.stat(b, h, t));
            float s[kBlock], dp[kBlock];
            tile_dots(s, &qkv(g.row(b, t), g.qcol(h)), kt.data(), g.hs, g.scale);
            tile_dots(dp, &datty(g.row(b, t), g.qcol(h)), vt.data(), g.hs, 1.0f);
            EST_TILE_LOOP for (int j = 0; j < kBlock; ++j) {
              const float ds = g.scale * kmath::fast_exp(s[j] - L) * (dp[j] - D);
              s[j] = j < n ? ds : 0.0f;
            }
            add_weighted_rows(&dqkv(g.row(b, t), g.qcol(h)), s, 0, n, qkv, g.row(b, j0), g.kcol(kvh), g.hs);
          });
        }
      });
}

// A team per (sequence, kv head, key block): dv = sum of p dO and dk = sum of ds q over the query heads that read
// the kv head (in head order) and the query blocks at or after the key block, accumulated in dqkv.
void key_value_gradients(MatF dqkv, CMatF datty, CVecF lse, CVecF rowdot, CMatF qkv, int B, const Geometry g,
                         CVecI kv_of) {
  Kokkos::parallel_for(
      "attention_fused_dkdv", block_teams(int64_t(B) * g.kv * g.blocks, 2, g.hs),
      KOKKOS_LAMBDA(const TeamMember& team) {
        const int kb = team.league_rank() % g.blocks, kvh = team.league_rank() / g.blocks % g.kv;
        const int b = team.league_rank() / (g.blocks * g.kv), j0 = kb * kRows;
        const int nk = g.T - j0 < kRows ? g.T - j0 : kRows;
        const Scratch qt(team.team_scratch(0), g.hs * kBlock), dyt(team.team_scratch(0), g.hs * kBlock),
            ls(team.team_scratch(0), kBlock), dd(team.team_scratch(0), kBlock);
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, nk), [&](const int r) {
          for (int d = 0; d < g.hs; ++d) dqkv(g.row(b, j0 + r), g.kcol(kvh) + d) = 0.0f;
          for (int d = 0; d < g.hs; ++d) dqkv(g.row(b, j0 + r), g.vcol(kvh) + d) = 0.0f;
        });
        for (int h = 0; h < g.q; ++h) {
          if (kv_of(h) != kvh) continue;
          for (int t0 = j0; t0 < g.T; t0 += kBlock) {
            const int nq = g.T - t0 < kBlock ? g.T - t0 : kBlock;
            team.team_barrier();
            load_transposed(team, qt.data(), qkv, g.row(b, t0), nq, g.qcol(h), g.hs);
            load_transposed(team, dyt.data(), datty, g.row(b, t0), nq, g.qcol(h), g.hs);
            Kokkos::parallel_for(Kokkos::TeamThreadRange(team, kBlock), [&](const int i) {
              ls(i) = i < nq ? lse(g.stat(b, h, t0 + i)) : 0.0f;
              dd(i) = i < nq ? rowdot(g.stat(b, h, t0 + i)) : 0.0f;
            });
            team.team_barrier();
            Kokkos::parallel_for(Kokkos::TeamThreadRange(team, nk), [&](const int r) {
              const int j = j0 + r, first = j > t0 ? j - t0 : 0;  // causal: queries t0 + first .. read key j
              if (first >= nq) return;
              float p[kBlock], ds[kBlock];
              tile_dots(p, &qkv(g.row(b, j), g.kcol(kvh)), qt.data(), g.hs, g.scale);
              tile_dots(ds, &qkv(g.row(b, j), g.vcol(kvh)), dyt.data(), g.hs, 1.0f);
              EST_TILE_LOOP for (int i = 0; i < kBlock; ++i) {
                const float e = kmath::fast_exp(p[i] - ls(i));
                p[i] = i >= first && i < nq ? e : 0.0f;
                ds[i] = g.scale * p[i] * (ds[i] - dd(i));
              }
              add_weighted_rows(&dqkv(g.row(b, j), g.vcol(kvh)), p, first, nq, datty, g.row(b, t0), g.qcol(h), g.hs);
              add_weighted_rows(&dqkv(g.row(b, j), g.kcol(kvh)), ds, first, nq, qkv, g.row(b, t0), g.qcol(h), g.hs);
            });
          }
        }
      });
}

}  // namespace

void attention_fused_forward(MatF atty, VecF lse, CMatF qkv, int B, int T, const AttentionHeads& heads) {
  const Geometry g = geometry(heads, atty.extent(1), qkv.extent(1), T);
  const auto kv_of = device_kv_of(heads);
  online_softmax_forward(atty, lse, qkv, B, g, kv_of);
}

void attention_fused_backward(MatF dqkv, VecF rowdot, CMatF datty, CMatF atty, CVecF lse, CMatF qkv, int B, int T,
                              const AttentionHeads& heads) {
  const Geometry g = geometry(heads, datty.extent(1), qkv.extent(1), T);
  const auto kv_of = device_kv_of(heads);
  output_row_dots(rowdot, datty, atty, B, g);
  query_gradients(dqkv, datty, lse, rowdot, qkv, B, g, kv_of);
  key_value_gradients(dqkv, datty, lse, rowdot, qkv, B, g, kv_of);
}

}  // namespace est
