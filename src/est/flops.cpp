#include "est/flops.hpp"

#include <algorithm>

namespace est {

const char* const kFlopsConvention =
    "training = 3 x forward; forward per token = 2*C*Vp (LM head) + per active layer with h query heads of size d "
    "reading g key/value heads (g = h for GPT-2) and m MLP neurons: 2*C*(h+2g)*d (QKV) + 2*h*d*C (attention "
    "projection) + 4*C*m (GPT-2's MLP) or 6*C*m (Llama's SwiGLU: gate, up, down) + 2*T*h*d (attention core, "
    "causal: unmasked half only); embedding, norms, RoPE, softmax, activations and optimizer not counted";

namespace {

double layer_forward(const ModelShape& s, int T, int heads, double kv_heads, int neurons) {
  const double C = s.n_embd, d = s.head_size(), hd = double(heads) * d, m = neurons;
  const double mlp_gemms = s.arch == Arch::llama ? 3 : 2;
  return 2 * C * (hd + 2 * kv_heads * d) + 2 * hd * C + mlp_gemms * 2 * C * m + 2.0 * T * hd;
}

// The key/value heads a layer's query heads read: one per group that has any of them.
int kv_heads_read(const ModelShape& s, const std::vector<int>& heads) {
  int kv = 0;
  for (size_t i = 0; i < heads.size(); ++i) kv += i == 0 || heads[i] / s.group_size() != heads[i - 1] / s.group_size();
  return kv;
}

// The LM head runs over the padded vocabulary, as llm.c's GEMM does.
double lm_head_forward(const ModelShape& s) { return 2.0 * s.n_embd * s.padded_vocab_size; }

StepFlops training(const ModelShape& s, int T, int64_t tokens, double forward_per_token) {
  const double full = lm_head_forward(s) + s.n_layer * layer_forward(s, T, s.n_head, s.kv_heads(), s.neurons());
  return {3.0 * double(tokens) * forward_per_token, 3.0 * double(tokens) * full};
}

}  // namespace

StepFlops step_flops(const ModelShape& s, int T, int64_t tokens, const Subnetwork& sub) {
  double forward = lm_head_forward(s);
  for (const LayerSelection& l : sub.layers) {
    if (l.active) forward += layer_forward(s, T, int(l.heads.size()), kv_heads_read(s, l.heads), int(l.neurons.size()));
  }
  return training(s, T, tokens, forward);
}

StepFlops step_flops(const ModelShape& s, int T, int64_t tokens, const std::vector<bool>& active_layers, int heads,
                     int neurons, double kv_heads) {
  const auto active = std::count(active_layers.begin(), active_layers.end(), true);
  if (kv_heads < 0) kv_heads = double(heads) / s.group_size();
  return training(s, T, tokens, lm_head_forward(s) + double(active) * layer_forward(s, T, heads, kv_heads, neurons));
}

ScheduleFlops schedule_flops(const ModelShape& s, int T, int64_t tokens_per_step, const Schedule& sched,
                             const SubnetworkSampler& sampler, int64_t total_steps) {
  ScheduleFlops out;
  int64_t first = 0;
  for (size_t i = 0; i < sched.stages.size(); ++i) {
    const StageSpec& stage = sched.stages[i];
    // Steps past every stage end belong to the last stage, as in Schedule::stage_at.
    const bool last = i + 1 == sched.stages.size();
    const int64_t end = last ? total_steps : std::clamp(sched.stage_end(i, total_steps), first, total_steps);
    StageFlops f{i, first, end, sampler.heads_for(stage.p_heads), count_for(stage.p_mlp, s.neurons()),
                 sampler.kv_heads_for(stage.p_heads)};
    for (int64_t step = first; step < end; ++step) {
      const std::vector<bool> layers = sampler.sample_layers(stage, step);
      const StepFlops sf = step_flops(s, T, tokens_per_step, layers, f.heads, f.neurons, f.kv_heads);
      f.active_layers += std::count(layers.begin(), layers.end(), true);
      f.flops += sf.executed;
      f.flops_full += sf.full;
    }
    if (end > first) f.active_layers /= double(end - first);
    out.flops += f.flops;
    out.flops_full += f.flops_full;
    out.stages.push_back(f);
    first = end;
  }
  return out;
}

}  // namespace est
