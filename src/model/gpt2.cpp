#include "model/gpt2.hpp"

#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "attention.hpp"
#include "encoder.hpp"
#include "gather.hpp"
#include "gelu.hpp"
#include "init.hpp"
#include "layernorm.hpp"
#include "linear.hpp"
#include "residual.hpp"

namespace est {

std::vector<ParamSpec> GPT2::parameters(const ModelShape& s, const ParameterLayout& share) {
  const int64_t L = s.n_layer, C = s.n_embd, Vp = s.padded_vocab_size, maxT = s.max_seq_len;
  const int64_t A = share.block_rows(Units::q_heads), M = share.neurons;  // this rank's head units and neurons
  using K = ParamKind;
  using U = Units;
  const std::vector<Units> qkv = {U::q_heads, U::kv_heads, U::kv_heads}, heads = {U::q_heads}, neurons = {U::neurons};
  return {{"wte", K::embedding, {Vp, C}},
          {"wpe", K::embedding, {maxT, C}},
          {"ln1w", K::norm, {L, C}, false, true},
          {"ln1b", K::norm, {L, C}, false, true},
          {"qkvw", K::matrix, {L, 3 * A, C}, false, true, qkv},
          {"qkvb", K::bias, {L, 3 * A}, false, true, qkv},
          {"attprojw", K::matrix, {L, A, C}, true, true, heads},
          {"attprojb", K::bias, {L, C}, false, true},
          {"ln2w", K::norm, {L, C}, false, true},
          {"ln2b", K::norm, {L, C}, false, true},
          {"fcw", K::matrix, {L, M, C}, false, true, neurons},
          {"fcb", K::bias, {L, M}, false, true, neurons},
          {"fcprojw", K::matrix, {L, M, C}, true, true, neurons},
          {"fcprojb", K::bias, {L, C}, false, true},
          {"lnfw", K::norm, {C}},
          {"lnfb", K::norm, {C}}};
}

// Calls f(name, use, elements, member) for every buffer of GPT-2's own (the common ones are Model's), `member`
// pointing into `m` (null without a model): the constructor allocates from this list and the memory plan sums
// it, so the two agree.
template <class F>
void GPT2::each_buffer(const ParameterLayout& layout, const ModelShape& shape, int B, int T, GPT2* m, const F& f) {
  const int64_t L = shape.n_layer, C = shape.n_embd;
  const int64_t NH = layout.heads, A = NH * shape.head_size(), M = layout.neurons;  // this rank's share
  const int64_t BT = int64_t(B) * T;
  Activations* a = m ? &m->acts_ : nullptr;
  GradScratch* g = m ? &m->scratch_ : nullptr;
  const auto in = [](auto* group, auto member) { return group ? &(group->*member) : nullptr; };
  using U = BufferUse;
  f("encoded", U::activations, BT * C, in(a, &Activations::encoded));
  f("ln1", U::activations, L * BT * C, in(a, &Activations::ln1));
  f("ln1_mean", U::activations, L * BT, in(a, &Activations::ln1_mean));
  f("ln1_rstd", U::activations, L * BT, in(a, &Activations::ln1_rstd));
  f("qkv", U::activations, L * BT * 3 * A, in(a, &Activations::qkv));
  f("atty", U::activations, L * BT * A, in(a, &Activations::atty));
  f("ln2", U::activations, L * BT * C, in(a, &Activations::ln2));
  f("ln2_mean", U::activations, L * BT, in(a, &Activations::ln2_mean));
  f("ln2_rstd", U::activations, L * BT, in(a, &Activations::ln2_rstd));
  f("fch", U::activations, L * BT * M, in(a, &Activations::fch));
  f("fch_gelu", U::activations, L * BT * M, in(a, &Activations::fch_gelu));
  f("lnf", U::activations, BT * C, in(a, &Activations::lnf));
  f("lnf_mean", U::activations, BT, in(a, &Activations::lnf_mean));
  f("lnf_rstd", U::activations, BT, in(a, &Activations::lnf_rstd));
  f("proj", U::activations, BT * C, in(a, &Activations::proj));
  f("dresidual", U::activations, BT * C, in(g, &GradScratch::dresidual));
  f("dbranch", U::activations, BT * C, in(g, &GradScratch::dbranch));
  f("dc", U::activations, BT * C, in(g, &GradScratch::dc));
  f("d4c", U::activations, BT * M, in(g, &GradScratch::d4c));
  f("dqkv", U::activations, BT * 3 * A, in(g, &GradScratch::dqkv));
}

std::vector<BufferSize> GPT2::buffer_sizes(const ModelShape& shape, int B, int T, Partition p,
                                           AttentionKind attention) {
  const ParameterLayout layout(shape, p);
  return sizes_of([&](const auto& f) {
    each_common_buffer(layout, shape, B, T, attention, nullptr, f);
    each_buffer(layout, shape, B, T, nullptr, f);
  });
}

GPT2::GPT2(const ModelShape& shape, int B, int T, const TensorParallel& tp, AttentionKind attention)
    : Model(shape, B, T, tp, attention) {
  each_buffer(layout_, shape, B, T, this, Allocate{});
}

void GPT2::init_random(uint64_t seed) {
  const float std = 0.02f;
  const float residual_std = std / std::sqrt(2.0f * shape_.n_layer);
  const ParameterLayout whole(shape_);
  Buffer global("init", size_t(whole.total));
  for (int id = 0; id < kNumParams; ++id) {
    const ParamSpec& p = whole[id];
    VecF t = vec(global.data() + p.offset, p.size);
    switch (id) {
      case WTE: fill_normal(vec(t.data(), int64_t(shape_.vocab_size) * shape_.n_embd), seed, id, std); break;
      case WPE: fill_normal(t, seed, id, 0.01f); break;
      case QKVW: case FCW: fill_normal(t, seed, id, std); break;
      case ATTPROJW: case FCPROJW: fill_normal(t, seed, id, residual_std); break;
      case LN1W: case LN2W: case LNFW: fill_constant(t, 1.0f); break;
      default: break;  // biases and LayerNorm shifts stay zero
    }
  }
  import_params(global);
}

GPT2::LayerWeights GPT2::weights(int l) const {
  auto w = [&](int id) { return weight(id, l); };
  const LayerSelection& sel = sub_.layers[l];
  return {w(LN1W), w(LN1B), w(QKVW), w(QKVB), w(ATTPROJW), w(ATTPROJB), w(LN2W), w(LN2B), w(FCW), w(FCB),
          w(FCPROJW), w(FCPROJB), int(sel.heads.size()), int(sel.neurons.size())};
}

GPT2::LayerActivations GPT2::activations(int64_t l, const LayerWeights& w) const {
  const int64_t BT = int64_t(B_) * T_, C = shape_.n_embd, NH = layout_.heads;
  const int64_t A = w.heads * shape_.head_size(), M = w.neurons;
  const int64_t A_max = NH * shape_.head_size(), M_max = layout_.neurons;  // per-layer strides
  const auto& a = acts_;
  return {mat(a.ln1.data() + l * BT * C, BT, C),
          mat(a.qkv.data() + l * BT * 3 * A_max, BT, 3 * A),
          mat(a.atty.data() + l * BT * A_max, BT, A),
          residual_after(l, false),
          mat(a.ln2.data() + l * BT * C, BT, C),
          mat(a.fch.data() + l * BT * M_max, BT, M),
          mat(a.fch_gelu.data() + l * BT * M_max, BT, M),
          residual_after(l, true),
          vec(a.ln1_mean.data() + l * BT, BT),
          vec(a.ln1_rstd.data() + l * BT, BT),
          vec(a.ln2_mean.data() + l * BT, BT),
          vec(a.ln2_rstd.data() + l * BT, BT)};
}

void GPT2::forward_to_logits() {
  const int B = B_, T = T_;
  const int64_t L = shape_.n_layer, C = shape_.n_embd, Vp = shape_.padded_vocab_size, BT = int64_t(B) * T;
  const int64_t hs = shape_.head_size();
  const float layer_scale = sub_.layer_scale;
  auto& a = acts_;
  encoder_forward(mat(a.encoded.data(), BT, C), tokens_, cmat(param(WTE), Vp, C),
                  cmat(param(WPE), shape_.max_seq_len, C), T);
  layer_input_.assign(L, nullptr);
  const float* residual = a.encoded.data();
  for (int64_t l = 0; l < L; ++l) {
    layer_input_[l] = residual;
    if (!sub_.layers[l].active) continue;  // identity on the residual stream: no kernel runs
    const LayerWeights w = weights(int(l));
    const int64_t A = w.heads * hs, M = w.neurons;  // attention and MLP widths of this layer
    const LayerActivations x = activations(l, w);
    MatF proj = mat(a.proj.data(), BT, C);

    layernorm_forward(x.ln1, x.ln1_mean, x.ln1_rstd, cmat(residual, BT, C), cvec(w.ln1w, C), cvec(w.ln1b, C));
    linear_forward(x.qkv, x.ln1, cmat(w.qkvw, 3 * A, C), cvec(w.qkvb, 3 * A));
    attention_.forward(l, x.atty, x.qkv, B, T, AttentionHeads::multi_head(w.heads));
    // Row-parallel: each rank's heads give a partial sum; the bias is added once, after the sum.
    linear_forward(proj, x.atty, cmat(w.attprojw, A, C), CVecF(), sub_.head_scale, WeightLayout::in_out);
    tp_allreduce(proj);
    bias_add_forward(proj, cvec(w.attprojb, C));
    residual_forward(x.residual2, cmat(residual, BT, C), proj, layer_scale);
    layernorm_forward(x.ln2, x.ln2_mean, x.ln2_rstd, x.residual2, cvec(w.ln2w, C), cvec(w.ln2b, C));
    linear_forward(x.fch, x.ln2, cmat(w.fcw, M, C), cvec(w.fcb, M));
    gelu_forward(x.fch_gelu, x.fch);
    linear_forward(proj, x.fch_gelu, cmat(w.fcprojw, M, C), CVecF(), sub_.mlp_scale, WeightLayout::in_out);
    tp_allreduce(proj);
    bias_add_forward(proj, cvec(w.fcprojb, C));
    residual_forward(x.residual3, x.residual2, proj, layer_scale);
    residual = x.residual3.data();
  }
  final_residual_ = residual;
  layernorm_forward(mat(a.lnf.data(), BT, C), vec(a.lnf_mean.data(), BT), vec(a.lnf_rstd.data(), BT),
                    cmat(residual, BT, C), cvec(param(LNFW), C), cvec(param(LNFB), C));
  // Tied LM head: logits = lnf · wte^T over the padded vocabulary.
  linear_forward(mat(logits_.data(), BT, Vp), mat(a.lnf.data(), BT, C), cmat(param(WTE), Vp, C), CVecF());
}

void GPT2::backward() {
  const int B = B_, T = T_;
  const int64_t L = shape_.n_layer, C = shape_.n_embd, Vp = shape_.padded_vocab_size, BT = int64_t(B) * T;
  const int64_t hs = shape_.head_size();
  const float layer_scale = sub_.layer_scale;
  auto& a = acts_;
  auto& s = scratch_;
  MatF dresidual = mat(s.dresidual.data(), BT, C);
  // A residual branch's gradient: the stream's, times the layer scale when there is one.
  const MatF dbranch = layer_scale == 1.0f ? dresidual : mat(s.dbranch.data(), BT, C);
  MatF dc = mat(s.dc.data(), BT, C);

  // LM head: dlnf = dlogits · wte, dwte = dlogits^T · lnf (the first write to dwte; the encoder adds to it).
  linear_backward(dc, mat(grad(WTE, -1), Vp, C), VecF(), cmat(logits_.data(), BT, Vp), cmat(a.lnf.data(), BT, C),
                  cmat(param(WTE), Vp, C));
  Kokkos::deep_copy(s.dresidual, 0.0f);
  layernorm_backward(dresidual, vec(grad(LNFW, -1), C), vec(grad(LNFB, -1), C), dc, cmat(final_residual_, BT, C),
                     cvec(param(LNFW), C), cvec(a.lnf_mean.data(), BT), cvec(a.lnf_rstd.data(), BT));
  gradients_complete(active_->ready_before_layers());

  for (int64_t l = L - 1; l >= 0; --l) {
    if (!sub_.layers[l].active) continue;
    const LayerWeights w = weights(int(l));
    const int64_t A = w.heads * hs, M = w.neurons;
    const LayerActivations x = activations(l, w);
    MatF d4c = mat(s.d4c.data(), BT, M);
    MatF datty = mat(s.dc.data(), BT, A);
    MatF dqkv = mat(s.dqkv.data(), BT, 3 * A);

    // MLP.
    if (layer_scale != 1.0f) residual_branch_backward(dbranch, dresidual, layer_scale);
    linear_backward(d4c, mat(grad(FCPROJW, l), M, C), vec(grad(FCPROJB, l), C), dbranch, x.fch_gelu,
                    cmat(w.fcprojw, M, C), sub_.mlp_scale, WeightLayout::in_out);
    gelu_backward(d4c, x.fch, d4c);
    linear_backward(dc, mat(grad(FCW, l), M, C), vec(grad(FCB, l), M), d4c, x.ln2, cmat(w.fcw, M, C));
    tp_allreduce(dc);  // column-parallel: each rank's neurons give part of the input gradient
    layernorm_backward(dresidual, vec(grad(LN2W, l), C), vec(grad(LN2B, l), C), dc, x.residual2, cvec(w.ln2w, C),
                       x.ln2_mean, x.ln2_rstd);
    // Attention.
    if (layer_scale != 1.0f) residual_branch_backward(dbranch, dresidual, layer_scale);
    linear_backward(datty, mat(grad(ATTPROJW, l), A, C), vec(grad(ATTPROJB, l), C), dbranch, x.atty,
                    cmat(w.attprojw, A, C), sub_.head_scale, WeightLayout::in_out);
    attention_.backward(l, dqkv, datty, x.atty, x.qkv, B, T, AttentionHeads::multi_head(w.heads));
    linear_backward(dc, mat(grad(QKVW, l), 3 * A, C), vec(grad(QKVB, l), 3 * A), dqkv, x.ln1, cmat(w.qkvw, 3 * A, C));
    tp_allreduce(dc);
    layernorm_backward(dresidual, vec(grad(LN1W, l), C), vec(grad(LN1B, l), C), dc, cmat(layer_input_[l], BT, C),
                       cvec(w.ln1w, C), x.ln1_mean, x.ln1_rstd);
    gradients_complete(active_->ready_after_layer(int(l)));
  }
  encoder_backward(mat(grad(WTE, -1), Vp, C), mat(grad(WPE, -1), shape_.max_seq_len, C), dresidual, tokens_, T);
}

}  // namespace est
