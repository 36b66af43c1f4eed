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

// Parameters of one rank's share of the subnetwork, as the backward pass completes them: what AdamW updates and
// the data-parallel sum carries.
GradientParts active_parameters(const ModelShape& s, const RankStep& r) {
  const double C = s.n_embd, Vp = s.padded_vocab_size;
  const Widths w = widths(s, r);
  if (w.llama)
    return {C + (s.tie_embeddings ? 0 : Vp * C), 2 * C + (w.A + 2 * w.K) * C + w.A * C + 3 * w.m * C,
            r.active_layers, Vp * C};
  const double A = w.A, m = w.m;
  return {2 * C, 4 * C + (3 * A * C + 3 * A) + (A * C + C) + (m * C + m) + (m * C + C), r.active_layers,
          Vp * C + double(s.max_seq_len) * C};
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

std::vector<double> StepWork::bucket_bytes() const {
  const double total = kFloat * gradient.total(), size = reduction.bucket_bytes > 0 ? reduction.bucket_bytes : total;
  std::vector<double> buckets;
  for (double at = 0; at < total; at += size) buckets.push_back(std::min(size, total - at));
  return buckets;
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
  w.gradient = active_parameters(s, r);
  w.reduction = r.reduction;
  const double params = w.gradient.total();
  w.optimizer_bytes = kFloat * kAdamWPasses * params;
  w.elementwise_bytes = kFloat * (L * per_layer + head) + w.optimizer_bytes;
  // Two all-reduces forward and two backward per active layer, and the gradient norm's partial sum.
  if (r.tp > 1) w.tp = {r.tp, r.tp_inter_node, 4 * L + 1, kFloat * 4 * L * n * C + sizeof(double)};
  // The compact gradient's buckets and the loss.
  if (r.dp > 1) w.dp = {r.dp, r.dp_inter_node, double(w.bucket_bytes().size()) + 1, kFloat * params + sizeof(double)};
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

double exposed_seconds(const StepWork& w, const std::vector<double>& bucket_seconds, double backward, double head,
                       double overlap_efficiency) {
  double total = 0;
  for (const double t : bucket_seconds) total += t;
  if (!w.reduction.overlap) return total;
  // When the pass has completed the gradient's first x bytes.
  const GradientParts& g = w.gradient;
  const double head_end = kFloat * g.head, layers_end = head_end + kFloat * g.layers * g.per_layer;
  const auto ready = [&](double x) {
    if (x <= head_end) return head;
    if (x > layers_end || g.layers <= 0) return backward;
    const double layer = std::ceil((x - head_end) / (kFloat * g.per_layer));
    return std::min(backward, head + layer / g.layers * (backward - head));
  };
  const std::vector<double> bytes = w.bucket_bytes();
  double end = 0, at = 0;
  for (size_t k = 0; k < bytes.size() && k < bucket_seconds.size(); ++k) {
    at += bytes[k];
    end = std::max(end, ready(at)) + bucket_seconds[k];
  }
  const double unhidden = std::max(0.0, end - backward);
  return unhidden + (1 - overlap_efficiency) * (total - unhidden);
}

namespace {

double gemms_seconds(const Cluster& c, const StepWork& w) {
  double gemm = 0;
  for (const GemmWork& g : w.gemms) gemm += gemm_seconds(c, g);
  return gemm;
}

// Compute runs this many times slower than on a rank alone on its cores: shared cores, and the partners it waits for.
double slowdown(const Cluster& c, const StepWork& w) {
  const bool alone = w.tp.group <= 1 && w.dp.group <= 1;
  return oversubscription(c, w.ranks_on_node, w.threads) * (alone ? 1.0 : c.imbalance);
}

}  // namespace

// Each forward GEMM's two gradient GEMMs, three of an elementwise kernel's five passes (AdamW comes after), and
// the tensor-parallel all-reduces of the input gradients; the LM head's backward comes first.
BackwardPass backward_pass(const Cluster& c, const StepWork& w) {
  const double k = slowdown(c, w);
  const double pass = (w.elementwise_bytes - w.optimizer_bytes) / c.memory_bandwidth * k;
  return {2.0 / 3.0 * gemms_seconds(c, w) * k + 0.6 * pass + collective_seconds(c, w.tp) / 2,
          2.0 / 3.0 * gemm_seconds(c, w.lm_head()) * k};
}

std::vector<double> bucket_seconds(const Cluster& c, const StepWork& w) {
  const Link& link = w.dp.inter_node ? c.inter : c.intra;
  std::vector<double> seconds;
  for (const double b : w.bucket_bytes()) seconds.push_back(allreduce_seconds(c.allreduce, link, w.dp.group, 1, b));
  return seconds;
}

StepCost step_cost(const Cluster& c, const StepWork& w) {
  StepCost cost;
  cost.compute_seconds = (gemms_seconds(c, w) + w.elementwise_bytes / c.memory_bandwidth) * slowdown(c, w);
  cost.tp_comm_seconds = collective_seconds(c, w.tp);
  if (w.dp.group <= 1) return cost;
  const BackwardPass pass = backward_pass(c, w);
  const std::vector<double> buckets = bucket_seconds(c, w);
  const double loss =
      allreduce_seconds(c.allreduce, w.dp.inter_node ? c.inter : c.intra, w.dp.group, 1, sizeof(double));
  cost.dp_reduce_seconds = loss;
  for (const double t : buckets) cost.dp_reduce_seconds += t;
  cost.dp_exposed_seconds = loss + exposed_seconds(w, buckets, pass.seconds, pass.head_seconds, c.overlap_efficiency);
  return cost;
}

}  // namespace est
