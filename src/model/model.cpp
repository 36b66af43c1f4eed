#include "model/model.hpp"

#include <stdexcept>

#include "crossentropy.hpp"
#include "gather.hpp"

namespace est {

Model::Model(const ModelShape& shape, int B, int T, const TensorParallel& tp, AttentionKind attention)
    : shape_(shape), layout_(shape, tp.partition), tp_(tp), B_max_(B), B_(B), T_(T),
      attention_(attention, B, T, layout_.heads) {
  if (shape.n_embd % shape.n_head != 0) throw std::invalid_argument("n_embd must be a multiple of n_head");
  if (shape.n_head % shape.kv_heads() != 0) throw std::invalid_argument("n_kv_head must divide n_head");
  if (T > shape.max_seq_len) throw std::invalid_argument("sequence length exceeds max_seq_len");
  each_common_buffer(layout_, shape, B, T, attention, this, Allocate{});
  for (int id = 0; id < layout_.count(); ++id) {
    std::vector<int> rows(layout_.rows(id));
    for (size_t r = 0; r < rows.size(); ++r) rows[r] = int(layout_.global_row(id, int64_t(r)));
    global_rows_.emplace_back("global_rows", rows.size());
    Kokkos::deep_copy(global_rows_.back(), Kokkos::View<const int*, Kokkos::HostSpace, Unmanaged>(rows.data(), rows.size()));
  }
  set_subnetwork(Subnetwork::full(shape.n_layer, layout_.heads, layout_.neurons));
}

float* Model::param(int id, int layer) const {
  const ParamSpec& p = layout_[id];
  float* base = params_.data() + p.offset;
  return layer < 0 ? base : base + layer * (p.size / shape_.n_layer);
}

MatF Model::residual_after(int64_t l, bool after_mlp) const {
  const int64_t BT = int64_t(B_) * T_, C = shape_.n_embd;
  return mat((after_mlp ? residual3_ : residual2_).data() + l * BT * C, BT, C);
}

CMatF Model::residual(int layer, bool after_mlp) const {
  if (!sub_.layers[layer].active) return cmat(layer_input_[layer], int64_t(B_) * T_, shape_.n_embd);
  return residual_after(layer, after_mlp);
}

const float* Model::weight(int id, int layer) const {
  const ActiveSlice& s = active_->slice(id, layer);
  return s.kind == SliceKind::dense ? params_.data() + s.offset : compact_params_.data() + s.grad_offset;
}

// Calls replicated(mine, all) for each replicated tensor, and sharded(mine, all, id) for each layer's slice of
// a sharded one, with `mine` this rank's (rows x cols) slice and `all` the unsplit model's (all_rows x cols).
template <class Replicated, class Sharded>
void Model::each_tensor(const Replicated& replicated, const Sharded& sharded) const {
  const ParameterLayout whole(shape_);
  for (int id = 0; id < layout_.count(); ++id) {
    const ParamSpec &mine = layout_[id], &all = whole[id];
    if (!mine.sharded()) {
      replicated(mine, all);
      continue;
    }
    const int64_t rows = layout_.rows(id), cols = mine.size / shape_.n_layer / rows, all_rows = whole.rows(id);
    for (int l = 0; l < shape_.n_layer; ++l)
      sharded(mat(params_.data() + mine.offset + l * rows * cols, rows, cols),
              all.offset + l * all_rows * cols, all_rows, cols, id);
  }
}

void Model::import_params(CVecF global) {
  each_tensor(
      [&](const ParamSpec& mine, const ParamSpec& all) {
        Kokkos::deep_copy(vec(params_.data() + mine.offset, mine.size), cvec(global.data() + all.offset, all.size));
      },
      [&](MatF slice, int64_t at, int64_t rows, int64_t cols, int id) {
        gather_rows(slice, cmat(global.data() + at, rows, cols), global_rows_[id]);
      });
}

void Model::export_params(VecF global) const {
  each_tensor(
      [&](const ParamSpec& mine, const ParamSpec& all) {
        if (tp_.partition.rank == 0)
          Kokkos::deep_copy(vec(global.data() + all.offset, all.size), cvec(params_.data() + mine.offset, mine.size));
      },
      [&](MatF slice, int64_t at, int64_t rows, int64_t cols, int id) {
        scatter_rows(mat(global.data() + at, rows, cols), slice, global_rows_[id]);
      });
}

std::vector<float> Model::gather_params() const {
  const int64_t n = ParameterLayout(shape_).total;
  Buffer global("gathered_params", size_t(n));
  export_params(global);
  if (tp_.comm && tp_.comm->size() > 1) tp_.comm->allreduce_sum(global.data(), n);
  std::vector<float> host(n);
  Kokkos::deep_copy(Kokkos::View<float*, Kokkos::HostSpace, Unmanaged>(host.data(), n), global);
  return host;
}

void Model::tp_allreduce(MatF x) const {
  if (tp_.comm && tp_.comm->size() > 1) tp_.comm->allreduce_sum(x.data(), int64_t(x.size()));
}

void Model::set_subnetwork(const Subnetwork& sub) {
  if (int(sub.layers.size()) != shape_.n_layer) throw std::invalid_argument("subnetwork has the wrong layer count");
  for (const LayerSelection& l : sub.layers)
    if ((!l.heads.empty() && l.heads.back() >= layout_.heads) || (!l.neurons.empty() && l.neurons.back() >= layout_.neurons))
      throw std::invalid_argument("subnetwork names heads or neurons this rank does not hold");
  sub_ = sub;
  active_ = std::make_unique<ActiveLayout>(layout_, shape_, sub_);
  if (!active_->is_full() && compact_params_.extent(0) == 0)
    compact_params_ = Buffer("compact_params", size_t(layout_.total));
}

void Model::set_batch(const int* tokens, const int* targets, int B) {
  if (B < 1 || B > B_max_) throw std::invalid_argument("batch of " + std::to_string(B) + " sequences exceeds the model's " +
                                                      std::to_string(B_max_));
  B_ = B;
  const int64_t BT = int64_t(B_) * T_;
  Kokkos::View<const int*, Kokkos::HostSpace, Unmanaged> ht(tokens, BT), hg(targets, BT);
  const auto first = std::make_pair(int64_t(0), BT);
  Kokkos::deep_copy(Kokkos::subview(tokens_, first), ht);
  Kokkos::deep_copy(Kokkos::subview(targets_, first), hg);
}

void Model::gather_weights() {
  for (const ActiveSlice& s : active_->slices()) {
    float* dst = compact_params_.data() + s.grad_offset;
    const CMatF src = cmat(params_.data() + s.offset, s.rows, s.cols);
    if (s.kind == SliceKind::rows) gather_rows(mat(dst, s.kept, s.cols), src, s.index);
  }
}

float Model::forward() {
  if (!active_->is_full()) gather_weights();
  forward_to_logits();
  const int64_t BT = int64_t(B_) * T_;
  const double sum = crossentropy_forward(logits(), targets_, shape_.vocab_size);
  return static_cast<float>(sum / BT);
}

float Model::forward_backward(int64_t tokens, const std::function<void(int64_t)>& complete) {
  if (!active_->is_full()) gather_weights();
  forward_to_logits();
  const int64_t BT = int64_t(B_) * T_;
  if (tokens == 0) tokens = BT;
  const double sum = crossentropy_forward_backward(mat(logits_.data(), BT, shape_.padded_vocab_size), targets_,
                                                   shape_.vocab_size, 1.0f / tokens);
  complete_ = complete;
  backward();
  gradients_complete(active_->total());
  complete_ = nullptr;
  return static_cast<float>(sum / tokens);
}

}  // namespace est
