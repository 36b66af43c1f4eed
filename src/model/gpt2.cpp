#include "model/gpt2.hpp"

#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "attention.hpp"
#include "crossentropy.hpp"
#include "encoder.hpp"
#include "gather.hpp"
#include "gelu.hpp"
#include "init.hpp"
#include "layernorm.hpp"
#include "linear.hpp"
#include "residual.hpp"

namespace est {

namespace {
Buffer alloc(const char* name, int64_t n) { return Buffer(std::string(name), static_cast<size_t>(n)); }
}  // namespace

// Calls f(name, use, elements, member) for every buffer the model holds, `member` pointing into `m` (null
// without a model): the constructor allocates from this list and the memory plan sums it, so the two agree.
template <class F>
void GPT2::each_buffer(const ParameterLayout& layout, const ModelShape& shape, int B, int T, GPT2* m, const F& f) {
  const int64_t L = shape.n_layer, C = shape.n_embd, Vp = shape.padded_vocab_size;
  const int64_t NH = layout.heads, A = NH * shape.head_size(), M = layout.neurons;  // this rank's share
  const int64_t BT = int64_t(B) * T, maps = int64_t(B) * NH * T * T;
  Activations* a = m ? &m->acts_ : nullptr;
  GradScratch* g = m ? &m->scratch_ : nullptr;
  const auto in = [](auto* group, auto member) { return group ? &(group->*member) : nullptr; };
  using U = BufferUse;
  f("params", U::parameters, layout.total, m ? &m->params_ : nullptr);
  f("grads", U::gradients, layout.total, m ? &m->grads_ : nullptr);
  f("compact_params", U::compact_copies, layout.total, m ? &m->compact_params_ : nullptr);
  f("tokens", U::batch, BT, m ? &m->tokens_ : nullptr);
  f("targets", U::batch, BT, m ? &m->targets_ : nullptr);
  f("encoded", U::activations, BT * C, in(a, &Activations::encoded));
  f("ln1", U::activations, L * BT * C, in(a, &Activations::ln1));
  f("ln1_mean", U::activations, L * BT, in(a, &Activations::ln1_mean));
  f("ln1_rstd", U::activations, L * BT, in(a, &Activations::ln1_rstd));
  f("qkv", U::activations, L * BT * 3 * A, in(a, &Activations::qkv));
  f("atty", U::activations, L * BT * A, in(a, &Activations::atty));
  f("att", U::attention_maps, L * maps, in(a, &Activations::att));
  f("residual2", U::activations, L * BT * C, in(a, &Activations::residual2));
  f("ln2", U::activations, L * BT * C, in(a, &Activations::ln2));
  f("ln2_mean", U::activations, L * BT, in(a, &Activations::ln2_mean));
  f("ln2_rstd", U::activations, L * BT, in(a, &Activations::ln2_rstd));
  f("fch", U::activations, L * BT * M, in(a, &Activations::fch));
  f("fch_gelu", U::activations, L * BT * M, in(a, &Activations::fch_gelu));
  f("residual3", U::activations, L * BT * C, in(a, &Activations::residual3));
  f("lnf", U::activations, BT * C, in(a, &Activations::lnf));
  f("lnf_mean", U::activations, BT, in(a, &Activations::lnf_mean));
  f("lnf_rstd", U::activations, BT, in(a, &Activations::lnf_rstd));
  f("logits", U::logits, BT * Vp, in(a, &Activations::logits));
  f("proj", U::activations, BT * C, in(a, &Activations::proj));
  f("dresidual", U::activations, BT * C, in(g, &GradScratch::dresidual));
  f("dbranch", U::activations, BT * C, in(g, &GradScratch::dbranch));
  f("dc", U::activations, BT * C, in(g, &GradScratch::dc));
  f("d4c", U::activations, BT * M, in(g, &GradScratch::d4c));
  f("dqkv", U::activations, BT * 3 * A, in(g, &GradScratch::dqkv));
  f("datt", U::attention_maps, maps, in(g, &GradScratch::datt));
}

std::vector<GPT2::BufferSize> GPT2::buffer_sizes(const ModelShape& shape, int B, int T, Partition p) {
  std::vector<BufferSize> sizes;
  each_buffer(ParameterLayout(shape, p), shape, B, T, nullptr, [&](const char* name, BufferUse use, int64_t n, auto* member) {
    sizes.push_back({name, use, n * int64_t(sizeof(typename std::remove_pointer_t<decltype(member)>::value_type))});
  });
  return sizes;
}

GPT2::GPT2(const ModelShape& shape, int B, int T, const TensorParallel& tp)
    : shape_(shape), layout_(shape, tp.partition), tp_(tp), B_max_(B), B_(B), T_(T) {
  if (shape.n_embd % shape.n_head != 0) throw std::invalid_argument("n_embd must be a multiple of n_head");
  if (T > shape.max_seq_len) throw std::invalid_argument("sequence length exceeds max_seq_len");
  // Compact copies only once a subnetwork needs them (set_subnetwork).
  each_buffer(layout_, shape, B, T, this, [](const char* name, BufferUse use, int64_t n, auto* member) {
    if (use != BufferUse::compact_copies) *member = std::remove_pointer_t<decltype(member)>(std::string(name), size_t(n));
  });
  for (int id = 0; id < kNumParams; ++id) {
    std::vector<int> rows(layout_.rows(id));
    for (size_t r = 0; r < rows.size(); ++r) rows[r] = int(layout_.global_row(id, int64_t(r)));
    global_rows_.emplace_back("global_rows", rows.size());
    Kokkos::deep_copy(global_rows_.back(), Kokkos::View<const int*, Kokkos::HostSpace, Unmanaged>(rows.data(), rows.size()));
  }
  set_subnetwork(Subnetwork::full(shape.n_layer, layout_.heads, layout_.neurons));
}

float* GPT2::param(int id, int layer) const {
  const ParamSpec& p = layout_[id];
  float* base = params_.data() + p.offset;
  return layer < 0 ? base : base + layer * (p.size / shape_.n_layer);
}

float* GPT2::grad(int id, int layer) const { return grads_.data() + active_->slice(id, layer).grad_offset; }

void GPT2::init_random(uint64_t seed) {
  const float std = 0.02f;
  const float residual_std = std / std::sqrt(2.0f * shape_.n_layer);
  const ParameterLayout whole(shape_);
  Buffer global = alloc("init", whole.total);
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

// Calls replicated(mine, all) for each replicated tensor, and sharded(mine, all, id) for each layer's slice of
// a sharded one, with `mine` this rank's (rows x cols) slice and `all` the unsplit model's (all_rows x cols).
template <class Replicated, class Sharded>
void GPT2::each_tensor(const Replicated& replicated, const Sharded& sharded) const {
  const ParameterLayout whole(shape_);
  for (int id = 0; id < kNumParams; ++id) {
    const ParamSpec &mine = layout_[id], &all = whole[id];
    if (!mine.sharded) {
      replicated(mine, all);
      continue;
    }
    const int64_t rows = layout_.rows(id), cols = mine.size / shape_.n_layer / rows, all_rows = whole.rows(id);
    for (int l = 0; l < shape_.n_layer; ++l)
      sharded(mat(params_.data() + mine.offset + l * rows * cols, rows, cols),
              all.offset + l * all_rows * cols, all_rows, cols, id);
  }
}

void GPT2::import_params(CVecF global) {
  each_tensor(
      [&](const ParamSpec& mine, const ParamSpec& all) {
        Kokkos::deep_copy(vec(params_.data() + mine.offset, mine.size), cvec(global.data() + all.offset, all.size));
      },
      [&](MatF slice, int64_t at, int64_t rows, int64_t cols, int id) {
        gather_rows(slice, cmat(global.data() + at, rows, cols), global_rows_[id]);
      });
}

void GPT2::export_params(VecF global) const {
  each_tensor(
      [&](const ParamSpec& mine, const ParamSpec& all) {
        if (tp_.partition.rank == 0)
          Kokkos::deep_copy(vec(global.data() + all.offset, all.size), cvec(params_.data() + mine.offset, mine.size));
      },
      [&](MatF slice, int64_t at, int64_t rows, int64_t cols, int id) {
        scatter_rows(mat(global.data() + at, rows, cols), slice, global_rows_[id]);
      });
}

std::vector<float> GPT2::gather_params() const {
  const int64_t n = ParameterLayout(shape_).total;
  Buffer global = alloc("gathered_params", n);
  export_params(global);
  if (tp_.comm && tp_.comm->size() > 1) tp_.comm->allreduce_sum(global.data(), n);
  std::vector<float> host(n);
  Kokkos::deep_copy(Kokkos::View<float*, Kokkos::HostSpace, Unmanaged>(host.data(), n), global);
  return host;
}

void GPT2::tp_allreduce(MatF x) const {
  if (tp_.comm && tp_.comm->size() > 1) tp_.comm->allreduce_sum(x.data(), int64_t(x.size()));
}

void GPT2::set_subnetwork(const Subnetwork& sub) {
  if (int(sub.layers.size()) != shape_.n_layer) throw std::invalid_argument("subnetwork has the wrong layer count");
  for (const LayerSelection& l : sub.layers)
    if ((!l.heads.empty() && l.heads.back() >= layout_.heads) || (!l.neurons.empty() && l.neurons.back() >= layout_.neurons))
      throw std::invalid_argument("subnetwork names heads or neurons this rank does not hold");
  sub_ = sub;
  active_ = std::make_unique<ActiveLayout>(layout_, shape_, sub_);
  if (!active_->is_full() && compact_params_.extent(0) == 0) compact_params_ = alloc("compact_params", layout_.total);
}

void GPT2::set_batch(const int* tokens, const int* targets, int B) {
  if (B < 1 || B > B_max_) throw std::invalid_argument("batch of " + std::to_string(B) + " sequences exceeds the model's " +
                                                      std::to_string(B_max_));
  B_ = B;
  const int64_t BT = int64_t(B_) * T_;
  Kokkos::View<const int*, Kokkos::HostSpace, Unmanaged> ht(tokens, BT), hg(targets, BT);
  const auto first = std::make_pair(int64_t(0), BT);
  Kokkos::deep_copy(Kokkos::subview(tokens_, first), ht);
  Kokkos::deep_copy(Kokkos::subview(targets_, first), hg);
}

// The parameters change every step, so the compact copies are refreshed before each forward pass.
void GPT2::gather_weights() {
  for (const ActiveSlice& s : active_->slices()) {
    float* dst = compact_params_.data() + s.grad_offset;
    const CMatF src = cmat(params_.data() + s.offset, s.rows, s.cols);
    if (s.kind == SliceKind::rows) gather_rows(mat(dst, s.kept, s.cols), src, s.index);
  }
}

GPT2::LayerWeights GPT2::weights(int l) const {
  auto w = [&](int id) -> const float* {
    const ActiveSlice& s = active_->slice(id, l);
    return s.kind == SliceKind::dense ? params_.data() + s.offset : compact_params_.data() + s.grad_offset;
  };
  const LayerSelection& sel = sub_.layers[l];
  return {w(LN1W), w(LN1B), w(QKVW), w(QKVB), w(ATTPROJW), w(ATTPROJB), w(LN2W), w(LN2B), w(FCW), w(FCB),
          w(FCPROJW), w(FCPROJB), int(sel.heads.size()), int(sel.neurons.size())};
}

GPT2::LayerActivations GPT2::activations(int64_t l, const LayerWeights& w) const {
  const int64_t BT = int64_t(B_) * T_, C = shape_.n_embd, T = T_, NH = layout_.heads;
  const int64_t A = w.heads * shape_.head_size(), M = w.neurons;
  const int64_t A_max = NH * shape_.head_size(), M_max = layout_.neurons;  // per-layer strides
  const auto& a = acts_;
  return {mat(a.ln1.data() + l * BT * C, BT, C),
          mat(a.qkv.data() + l * BT * 3 * A_max, BT, 3 * A),
          mat(a.atty.data() + l * BT * A_max, BT, A),
          mat(a.att.data() + l * B_ * NH * T * T, int64_t(B_) * w.heads * T, T),
          mat(a.residual2.data() + l * BT * C, BT, C),
          mat(a.ln2.data() + l * BT * C, BT, C),
          mat(a.fch.data() + l * BT * M_max, BT, M),
          mat(a.fch_gelu.data() + l * BT * M_max, BT, M),
          mat(a.residual3.data() + l * BT * C, BT, C),
          vec(a.ln1_mean.data() + l * BT, BT),
          vec(a.ln1_rstd.data() + l * BT, BT),
          vec(a.ln2_mean.data() + l * BT, BT),
          vec(a.ln2_rstd.data() + l * BT, BT)};
}

CMatF GPT2::residual(int layer, bool after_mlp) const {
  const int64_t BT = int64_t(B_) * T_, C = shape_.n_embd;
  if (!sub_.layers[layer].active) return cmat(layer_input_[layer], BT, C);
  const Buffer& b = after_mlp ? acts_.residual3 : acts_.residual2;
  return cmat(b.data() + layer * BT * C, BT, C);
}

void GPT2::forward_to_logits() {
  const int B = B_, T = T_;
  const int64_t L = shape_.n_layer, C = shape_.n_embd, Vp = shape_.padded_vocab_size, BT = int64_t(B) * T;
  const int64_t hs = shape_.head_size();
  const float layer_scale = sub_.layer_scale;
  auto& a = acts_;
  if (!active_->is_full()) gather_weights();
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
    attention_forward(x.atty, x.att, x.qkv, B, T, w.heads);
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
  linear_forward(mat(a.logits.data(), BT, Vp), mat(a.lnf.data(), BT, C), cmat(param(WTE), Vp, C), CVecF());
}

float GPT2::forward() {
  forward_to_logits();
  const int64_t BT = int64_t(B_) * T_;
  const double sum =
      crossentropy_forward(cmat(acts_.logits.data(), BT, shape_.padded_vocab_size), targets_, shape_.vocab_size);
  return static_cast<float>(sum / BT);
}

float GPT2::forward_backward(int64_t tokens) {
  forward_to_logits();
  const int64_t BT = int64_t(B_) * T_;
  if (tokens == 0) tokens = BT;
  const double sum = crossentropy_forward_backward(mat(acts_.logits.data(), BT, shape_.padded_vocab_size),
                                                   targets_, shape_.vocab_size, 1.0f / tokens);
  backward();
  return static_cast<float>(sum / tokens);
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
  linear_backward(dc, mat(grad(WTE, -1), Vp, C), VecF(), cmat(a.logits.data(), BT, Vp), cmat(a.lnf.data(), BT, C),
                  cmat(param(WTE), Vp, C));
  Kokkos::deep_copy(s.dresidual, 0.0f);
  layernorm_backward(dresidual, vec(grad(LNFW, -1), C), vec(grad(LNFB, -1), C), dc, cmat(final_residual_, BT, C),
                     cvec(param(LNFW), C), cvec(a.lnf_mean.data(), BT), cvec(a.lnf_rstd.data(), BT));

  for (int64_t l = L - 1; l >= 0; --l) {
    if (!sub_.layers[l].active) continue;
    const LayerWeights w = weights(int(l));
    const int64_t A = w.heads * hs, M = w.neurons;
    const LayerActivations x = activations(l, w);
    MatF d4c = mat(s.d4c.data(), BT, M);
    MatF datty = mat(s.dc.data(), BT, A);
    MatF dqkv = mat(s.dqkv.data(), BT, 3 * A);
    MatF datt = mat(s.datt.data(), int64_t(B) * w.heads * T, T);

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
    attention_backward(dqkv, datt, datty, x.att, x.qkv, B, T, w.heads);
    linear_backward(dc, mat(grad(QKVW, l), 3 * A, C), vec(grad(QKVB, l), 3 * A), dqkv, x.ln1, cmat(w.qkvw, 3 * A, C));
    tp_allreduce(dc);
    layernorm_backward(dresidual, vec(grad(LN1W, l), C), vec(grad(LN1B, l), C), dc, cmat(layer_input_[l], BT, C),
                       cvec(w.ln1w, C), x.ln1_mean, x.ln1_rstd);
  }
  encoder_backward(mat(grad(WTE, -1), Vp, C), mat(grad(WPE, -1), shape_.max_seq_len, C), dresidual, tokens_, T);
}

}  // namespace est
