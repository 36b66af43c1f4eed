#include "model/llama.hpp"

#include <cmath>

#include "encoder.hpp"
#include "init.hpp"
#include "linear.hpp"
#include "residual.hpp"
#include "rmsnorm.hpp"
#include "rope.hpp"
#include "swiglu.hpp"

namespace est {

std::vector<ParamSpec> Llama::parameters(const ModelShape& s, const ParameterLayout& share) {
  const int64_t L = s.n_layer, C = s.n_embd, Vp = s.padded_vocab_size;
  const int64_t Q = share.block_rows(Units::q_heads), K = share.block_rows(Units::kv_heads), M = share.neurons;
  using Kd = ParamKind;
  using U = Units;
  std::vector<ParamSpec> specs = {
      {"wte", Kd::embedding, {Vp, C}},
      {"rms1w", Kd::norm, {L, C}, false, true},
      {"qkvw", Kd::matrix, {L, Q + 2 * K, C}, false, true, {U::q_heads, U::kv_heads, U::kv_heads}},
      {"attprojw", Kd::matrix, {L, Q, C}, true, true, {U::q_heads}},
      {"rms2w", Kd::norm, {L, C}, false, true},
      {"gateupw", Kd::matrix, {L, 2 * M, C}, false, true, {U::neurons, U::neurons}},
      {"downw", Kd::matrix, {L, M, C}, true, true, {U::neurons}},
      {"rmsfw", Kd::norm, {C}},
  };
  if (!s.tie_embeddings) specs.push_back({"lmhead", Kd::matrix, {Vp, C}});
  return specs;
}

// Llama's own buffers (the common ones are Model's), `member` pointing into `m` (null without a model): the
// constructor allocates from this list and the memory plan sums it.
template <class F>
void Llama::each_buffer(const ParameterLayout& layout, const ModelShape& shape, int B, int T, Llama* m, const F& f) {
  const int64_t L = shape.n_layer, C = shape.n_embd, hs = shape.head_size();
  const int64_t Q = layout.block_rows(Units::q_heads), K = layout.block_rows(Units::kv_heads), M = layout.neurons;
  const int64_t BT = int64_t(B) * T;
  Activations* a = m ? &m->acts_ : nullptr;
  GradScratch* g = m ? &m->scratch_ : nullptr;
  const auto in = [](auto* group, auto member) { return group ? &(group->*member) : nullptr; };
  using U = BufferUse;
  f("encoded", U::activations, BT * C, in(a, &Activations::encoded));
  f("ln1", U::activations, L * BT * C, in(a, &Activations::ln1));
  f("ln1_rstd", U::activations, L * BT, in(a, &Activations::ln1_rstd));
  f("qkv", U::activations, L * BT * (Q + 2 * K), in(a, &Activations::qkv));
  f("atty", U::activations, L * BT * Q, in(a, &Activations::atty));
  f("ln2", U::activations, L * BT * C, in(a, &Activations::ln2));
  f("ln2_rstd", U::activations, L * BT, in(a, &Activations::ln2_rstd));
  f("fch", U::activations, L * BT * 2 * M, in(a, &Activations::fch));
  f("fch_act", U::activations, L * BT * M, in(a, &Activations::fch_act));
  f("lnf", U::activations, BT * C, in(a, &Activations::lnf));
  f("lnf_rstd", U::activations, BT, in(a, &Activations::lnf_rstd));
  f("proj", U::activations, BT * C, in(a, &Activations::proj));
  f("rope_cos", U::activations, int64_t(T) * (hs / 2), in(a, &Activations::rope_cos));
  f("rope_sin", U::activations, int64_t(T) * (hs / 2), in(a, &Activations::rope_sin));
  f("dresidual", U::activations, BT * C, in(g, &GradScratch::dresidual));
  f("dbranch", U::activations, BT * C, in(g, &GradScratch::dbranch));
  f("dc", U::activations, BT * C, in(g, &GradScratch::dc));
  f("dact", U::activations, BT * M, in(g, &GradScratch::dact));
  f("dfch", U::activations, BT * 2 * M, in(g, &GradScratch::dfch));
  f("dqkv", U::activations, BT * (Q + 2 * K), in(g, &GradScratch::dqkv));
}

std::vector<BufferSize> Llama::buffer_sizes(const ModelShape& shape, int B, int T, Partition p,
                                            AttentionKind attention) {
  const ParameterLayout layout(shape, p);
  return sizes_of([&](const auto& f) {
    each_common_buffer(layout, shape, B, T, attention, nullptr, f);
    each_buffer(layout, shape, B, T, nullptr, f);
  });
}

Llama::Llama(const ModelShape& shape, int B, int T, const TensorParallel& tp, AttentionKind attention)
    : Model(shape, B, T, tp, attention) {
  if (shape.head_size() % 2 != 0) throw std::invalid_argument("RoPE needs an even head size (n_embd / n_head)");
  each_buffer(layout_, shape, B, T, this, Allocate{});
  const int64_t half = shape.head_size() / 2;
  rope_tables(mat(acts_.rope_cos.data(), T, half), mat(acts_.rope_sin.data(), T, half), shape.rope_theta);
}

void Llama::init_random(uint64_t seed) {
  const float std = 0.02f;
  const float residual_std = std / std::sqrt(2.0f * shape_.n_layer);
  const ParameterLayout whole(shape_);
  Buffer global("init", size_t(whole.total));
  for (int id = 0; id < whole.count(); ++id) {
    const ParamSpec& p = whole[id];
    VecF t = vec(global.data() + p.offset, p.size);
    switch (id) {
      case L_WTE: case L_LMHEAD:
        fill_normal(vec(t.data(), int64_t(shape_.vocab_size) * shape_.n_embd), seed, id, std);
        break;
      case L_QKVW: case L_GATEUPW: fill_normal(t, seed, id, std); break;
      case L_ATTPROJW: case L_DOWNW: fill_normal(t, seed, id, residual_std); break;
      default: fill_constant(t, 1.0f); break;  // the RMSNorm gains
    }
  }
  import_params(global);
}

Llama::LayerWeights Llama::weights(int l) const {
  const LayerSelection& sel = sub_.layers[l];
  // The key/value heads the active query heads read, renumbered in the compact qkv.
  AttentionHeads heads;
  heads.q = int(sel.heads.size());
  const int group = layout_.heads / layout_.kv_heads;
  for (size_t i = 0; i < sel.heads.size(); ++i) {
    if (i == 0 || sel.heads[i] / group != sel.heads[i - 1] / group) ++heads.kv;
    heads.kv_of.push_back(heads.kv - 1);
  }
  auto w = [&](int id) { return weight(id, l); };
  return {w(L_RMS1W), w(L_QKVW), w(L_ATTPROJW), w(L_RMS2W), w(L_GATEUPW), w(L_DOWNW), heads, int(sel.neurons.size())};
}

Llama::LayerActivations Llama::activations(int64_t l, const LayerWeights& w) const {
  const int64_t BT = int64_t(B_) * T_, C = shape_.n_embd, hs = layout_.head_size;
  const int64_t Q = w.heads.q * hs, K = w.heads.kv * hs, M = w.neurons;
  // Per-layer strides: the full widths.
  const int64_t Q_max = layout_.block_rows(Units::q_heads), K_max = layout_.block_rows(Units::kv_heads);
  const int64_t M_max = layout_.neurons;
  const auto& a = acts_;
  return {mat(a.ln1.data() + l * BT * C, BT, C),
          mat(a.qkv.data() + l * BT * (Q_max + 2 * K_max), BT, Q + 2 * K),
          mat(a.atty.data() + l * BT * Q_max, BT, Q),
          residual_after(l, false),
          mat(a.ln2.data() + l * BT * C, BT, C),
          mat(a.fch.data() + l * BT * 2 * M_max, BT, 2 * M),
          mat(a.fch_act.data() + l * BT * M_max, BT, M),
          residual_after(l, true),
          vec(a.ln1_rstd.data() + l * BT, BT),
          vec(a.ln2_rstd.data() + l * BT, BT)};
}

void Llama::forward_to_logits() {
  const int B = B_, T = T_;
  const int64_t L = shape_.n_layer, C = shape_.n_embd, Vp = shape_.padded_vocab_size, BT = int64_t(B) * T;
  const int64_t hs = layout_.head_size;
  const float eps = shape_.norm_eps, layer_scale = sub_.layer_scale;
  auto& a = acts_;
  const CMatF cos = cmat(a.rope_cos.data(), T, hs / 2), sin = cmat(a.rope_sin.data(), T, hs / 2);
  embedding_forward(mat(a.encoded.data(), BT, C), tokens_, cmat(param(L_WTE), Vp, C));
  layer_input_.assign(L, nullptr);
  const float* residual = a.encoded.data();
  for (int64_t l = 0; l < L; ++l) {
    layer_input_[l] = residual;
    if (!sub_.layers[l].active) continue;  // identity on the residual stream: no kernel runs
    const LayerWeights w = weights(int(l));
    const int64_t Q = w.heads.q * hs, K = w.heads.kv * hs, M = w.neurons;
    const LayerActivations x = activations(l, w);
    MatF proj = mat(a.proj.data(), BT, C);

    rmsnorm_forward(x.ln1, x.ln1_rstd, cmat(residual, BT, C), cvec(w.rms1w, C), eps);
    linear_forward(x.qkv, x.ln1, cmat(w.qkvw, Q + 2 * K, C), CVecF());
    rope_forward(x.qkv, w.heads.q + w.heads.kv, int(hs), cos, sin);  // the query heads, then the key heads
    attention_.forward(l, x.atty, x.qkv, B, T, w.heads);
    linear_forward(proj, x.atty, cmat(w.attprojw, Q, C), CVecF(), sub_.head_scale, WeightLayout::in_out);
    tp_allreduce(proj);
    residual_forward(x.residual2, cmat(residual, BT, C), proj, layer_scale);
    rmsnorm_forward(x.ln2, x.ln2_rstd, x.residual2, cvec(w.rms2w, C), eps);
    linear_forward(x.fch, x.ln2, cmat(w.gateupw, 2 * M, C), CVecF());
    swiglu_forward(x.fch_act, x.fch);
    linear_forward(proj, x.fch_act, cmat(w.downw, M, C), CVecF(), sub_.mlp_scale, WeightLayout::in_out);
    tp_allreduce(proj);
    residual_forward(x.residual3, x.residual2, proj, layer_scale);
    residual = x.residual3.data();
  }
  final_residual_ = residual;
  rmsnorm_forward(mat(a.lnf.data(), BT, C), vec(a.lnf_rstd.data(), BT), cmat(residual, BT, C),
                  cvec(param(L_RMSFW), C), eps);
  linear_forward(mat(logits_.data(), BT, Vp), mat(a.lnf.data(), BT, C), cmat(param(head_id()), Vp, C), CVecF());
}

void Llama::mlp_block_backward(int64_t l, const LayerWeights& w, const LayerActivations& x, MatF dbranch) {
  const int64_t BT = int64_t(B_) * T_, C = shape_.n_embd, M = w.neurons;
  auto& s = scratch_;
  MatF dact = mat(s.dact.data(), BT, M), dfch = mat(s.dfch.data(), BT, 2 * M), dc = mat(s.dc.data(), BT, C);
  linear_backward(dact, mat(grad(L_DOWNW, int(l)), M, C), VecF(), dbranch, x.fch_act, cmat(w.downw, M, C),
                  sub_.mlp_scale, WeightLayout::in_out);
  swiglu_backward(dfch, dact, x.fch);
  linear_backward(dc, mat(grad(L_GATEUPW, int(l)), 2 * M, C), VecF(), dfch, x.ln2, cmat(w.gateupw, 2 * M, C));
  tp_allreduce(dc);  // column-parallel: each rank's neurons give part of the input gradient
  rmsnorm_backward(mat(s.dresidual.data(), BT, C), vec(grad(L_RMS2W, int(l)), C), dc, x.residual2,
                   cvec(w.rms2w, C), x.ln2_rstd);
}

void Llama::attention_block_backward(int64_t l, const LayerWeights& w, const LayerActivations& x, MatF dbranch) {
  const int B = B_, T = T_;
  const int64_t BT = int64_t(B) * T, C = shape_.n_embd, hs = layout_.head_size;
  const int64_t Q = w.heads.q * hs, K = w.heads.kv * hs;
  auto& s = scratch_;
  auto& a = acts_;
  MatF datty = mat(s.dc.data(), BT, Q), dc = mat(s.dc.data(), BT, C);
  MatF dqkv = mat(s.dqkv.data(), BT, Q + 2 * K);
  linear_backward(datty, mat(grad(L_ATTPROJW, int(l)), Q, C), VecF(), dbranch, x.atty, cmat(w.attprojw, Q, C),
                  sub_.head_scale, WeightLayout::in_out);
  attention_.backward(l, dqkv, datty, x.atty, x.qkv, B, T, w.heads);
  // RoPE is a rotation: its backward rotates the gradient back, without the inputs.
  rope_backward(dqkv, w.heads.q + w.heads.kv, int(hs), cmat(a.rope_cos.data(), T, hs / 2),
                cmat(a.rope_sin.data(), T, hs / 2));
  linear_backward(dc, mat(grad(L_QKVW, int(l)), Q + 2 * K, C), VecF(), dqkv, x.ln1, cmat(w.qkvw, Q + 2 * K, C));
  tp_allreduce(dc);
  rmsnorm_backward(mat(s.dresidual.data(), BT, C), vec(grad(L_RMS1W, int(l)), C), dc, cmat(layer_input_[l], BT, C),
                   cvec(w.rms1w, C), x.ln1_rstd);
}

void Llama::backward() {
  const int64_t L = shape_.n_layer, C = shape_.n_embd, Vp = shape_.padded_vocab_size, BT = int64_t(B_) * T_;
  const float layer_scale = sub_.layer_scale;
  auto& a = acts_;
  auto& s = scratch_;
  MatF dresidual = mat(s.dresidual.data(), BT, C), dc = mat(s.dc.data(), BT, C);
  // A residual branch's gradient: the stream's, times the layer scale when there is one.
  const MatF dbranch = layer_scale == 1.0f ? dresidual : mat(s.dbranch.data(), BT, C);

  // LM head: dlnf = dlogits · W, dW = dlogits^T · lnf (with a tied head, the first write to dwte).
  linear_backward(dc, mat(grad(head_id(), -1), Vp, C), VecF(), cmat(logits_.data(), BT, Vp),
                  cmat(a.lnf.data(), BT, C), cmat(param(head_id()), Vp, C));
  Kokkos::deep_copy(s.dresidual, 0.0f);
  rmsnorm_backward(dresidual, vec(grad(L_RMSFW, -1), C), dc, cmat(final_residual_, BT, C), cvec(param(L_RMSFW), C),
                   cvec(a.lnf_rstd.data(), BT));
  gradients_complete(active_->ready_before_layers());
  for (int64_t l = L - 1; l >= 0; --l) {
    if (!sub_.layers[l].active) continue;
    const LayerWeights w = weights(int(l));
    const LayerActivations x = activations(l, w);
    if (layer_scale != 1.0f) residual_branch_backward(dbranch, dresidual, layer_scale);
    mlp_block_backward(l, w, x, dbranch);
    if (layer_scale != 1.0f) residual_branch_backward(dbranch, dresidual, layer_scale);
    attention_block_backward(l, w, x, dbranch);
    gradients_complete(active_->ready_after_layer(int(l)));
  }
  if (!shape_.tie_embeddings) Kokkos::deep_copy(vec(grad(L_WTE, -1), Vp * C), 0.0f);
  embedding_backward(mat(grad(L_WTE, -1), Vp, C), dresidual, tokens_);
}

}  // namespace est
