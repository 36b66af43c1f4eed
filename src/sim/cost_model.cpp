#include "sim/cost_model.hpp"

#include <algorithm>
#include <cmath>

namespace est {
namespace {

constexpr double kFloat = 4;  // bytes per value: activations, parameters, gradients and moments are fp32

// Reads and writes of a forward kernel plus its backward (which reads the input and the output gradient and
// writes the input gradient): 2 + 3 passes over the tensor.
constexpr double kPassesForwardBackward = 5;
// AdamW reads the parameter, gradient and two moments and writes the parameter and the moments.
constexpr double kAdamWPasses = 7;

// The widths of a rank's layer: query rows A, key/value rows K (whole groups), MLP neurons m.
struct Widths {
  double A, K, m;
  bool llama;
};
Widths widths(const ModelShape& s, const RankStep& r) {
  const double hs = s.head_size();
  return {r.heads * hs, double(r.heads) / s.group_size() * hs, double(r.neurons), s.arch == Arch::llama};
}

// Parameters of one rank's share of the subnetwork: what AdamW updates and the data-parallel reduction carries.
double active_parameters(const ModelShape& s, const RankStep& r) {
  const double C = s.n_embd, Vp = s.padded_vocab_size;
  const Widths w = widths(s, r);
  if (w.llama) {
    const double layer = 2 * C + (w.A + 2 * w.K) * C + w.A * C + 3 * w.m * C;
    return Vp * C * (s.tie_embeddings ? 1 : 2) + C + r.active_layers * layer;
  }
  const double A = w.A, m = w.m;
  const double layer = 4 * C + (3 * A * C + 3 * A) + (A * C + C) + (m * C + m) + (m * C + C);
  return Vp * C + double(s.max_seq_len) * C + 2 * C + r.active_layers * layer;
}

}  // namespace

double StepWork::gemm_flops() const {
  double f = 0;
  for (const GemmWork& g : gemms) f += g.flops * g.calls;
  return f;
}

double StepWork::gemm_calls() const {
  double n = 0;
  for (const GemmWork& g : gemms) n += g.calls;
  return n;
}

StepWork step_work(const ModelShape& s, int T, const RankStep& r) {
  const double C = s.n_embd, Vp = s.padded_vocab_size;
  const Widths wd = widths(s, r);
  const double A = wd.A, K = wd.K, m = wd.m;
  const double n = r.sequences * T, L = r.active_layers;
  StepWork w;
  // Each forward GEMM has a data-gradient and a weight-gradient GEMM of the same work in the backward pass.
  w.gemms = {
      {2 * n * C * (A + 2 * K), 3 * L},   // QKV
      {2 * n * A * C, 3 * L},             // attention projection
      {2 * n * C * m * (wd.llama ? 2 : 1), 3 * L},  // fc (Llama: gate and up in one GEMM)
      {2 * n * m * C, 3 * L},             // MLP projection
      // Attention core: per sequence one batched GEMM over the heads for QK^T and one for A·V, each the causal
      // half of T·T·A multiply-adds.
      {double(T) * T * A, 6 * r.sequences * L},
      {2 * n * C * Vp, 3},  // LM head (replicated over tensor-parallel ranks)
  };
  const double per_layer = 2 * kPassesForwardBackward * n * C  // two norms
                           + 2 * kPassesForwardBackward * n * C  // two residual additions
                           + kPassesForwardBackward * n * m * (wd.llama ? 2 : 1)  // GELU, or SwiGLU's two inputs
                           + (wd.llama ? 4 * n * (A + K) : 0)    // RoPE, in place forward and backward
                           + kPassesForwardBackward * n * T / 2 * r.heads;  // causal softmax
  const double head = 2 * kPassesForwardBackward * n * C  // embedding, final LayerNorm
                      + 4 * n * Vp;                        // cross-entropy: logits to probabilities to gradients
  const double params = active_parameters(s, r);
  w.elementwise_bytes = kFloat * (L * per_layer + head + kAdamWPasses * params);
  // Two all-reduces forward and two backward per active layer, and the gradient norm's partial sum.
  if (r.tp > 1) w.tp = {r.tp, r.tp_inter_node, 4 * L + 1, kFloat * 4 * L * n * C + sizeof(double)};
  // The compact gradient and the loss.
  if (r.dp > 1) w.dp = {r.dp, r.dp_inter_node, 2, kFloat * params + sizeof(double)};
  w.ranks_on_node = r.ranks_on_node;
  w.threads = r.threads;
  return w;
}

double gemm_seconds(const Cluster& c, const GemmWork& g) {
  const double rate = c.peak_flops * c.gemm.efficiency;
  return g.calls * (c.gemm.launch_seconds + (g.flops + c.gemm.half_rate_flops) / rate);
}

double allreduce_seconds(AllreduceAlgorithm algorithm, const Link& link, int p, double calls, double bytes) {
  if (p <= 1 || calls <= 0) return 0;
  const double ring = 2.0 * (p - 1) * calls * link.alpha + 2.0 * (p - 1) / p * bytes * link.beta;
  const double tree = 2.0 * std::ceil(std::log2(double(p))) * (calls * link.alpha + bytes * link.beta);
  switch (algorithm) {
    case AllreduceAlgorithm::ring: return ring;
    case AllreduceAlgorithm::tree: return tree;
    case AllreduceAlgorithm::automatic: return std::min(ring, tree);
  }
  return ring;
}

double collective_seconds(const Cluster& c, const CollectiveWork& w) {
  return allreduce_seconds(c.allreduce, w.inter_node ? c.inter : c.intra, w.group, w.calls, w.bytes);
}

double oversubscription(const Cluster& c, int ranks_on_node, int threads) {
  if (std::isinf(c.cores)) return 1;
  const double per_rank = threads > 0 ? threads : c.cores;
  return std::max(1.0, ranks_on_node * per_rank / c.cores);
}

StepCost step_cost(const Cluster& c, const StepWork& w) {
  double compute = w.elementwise_bytes / c.memory_bandwidth;
  for (const GemmWork& g : w.gemms) compute += gemm_seconds(c, g);
  compute *= oversubscription(c, w.ranks_on_node, w.threads);
  // A rank alone waits for nobody.
  const bool alone = w.tp.group <= 1 && w.dp.group <= 1;
  return {alone ? compute : compute * c.imbalance, collective_seconds(c, w.tp), collective_seconds(c, w.dp)};
}

}  // namespace est
