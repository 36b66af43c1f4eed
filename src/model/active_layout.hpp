#pragma once
// What a subnetwork trains, and where its gradient lives. Each per-layer tensor of an active layer is a slice:
// dense (all of it), or only some rows: the query rows and attention-projection rows of the active heads, the
// key/value rows of the key/value heads they read, the MLP rows of the active neurons (parameters.hpp keeps the
// projections input-major for this).
// The gradient stores each slice compactly, back to back, so a subnetwork's gradient is exactly as large as the
// subnetwork. Its order is the order in which the backward pass completes the slices, so that the data-parallel
// sum can start on its front while the backward pass still fills the rest (parallel/gradient_reducer.hpp):
// first the tensors outside the layers that the LM head's backward finishes (final norm, an untied LM head), then
// the layers from the last to the first (each layer's tensors in parameter order), then the embeddings, which the
// encoder's backward, the last kernel of the pass, completes.
#include <vector>

#include "est/subnetwork.hpp"
#include "model/parameters.hpp"
#include "views.hpp"

namespace est {

enum class SliceKind {
  dense,  // the whole tensor slice trains
  rows,   // only the rows in `index`
  none,   // an inactive layer's slice: no gradient at all
};

struct ActiveSlice {
  int id = 0;           // ParamId
  int layer = -1;       // -1 for tensors outside the layers
  int64_t offset = 0;   // of the full (rows x cols) slice in the parameter buffer
  int64_t rows = 0, cols = 0;
  SliceKind kind = SliceKind::dense;
  int64_t kept = 0;         // rows that train (kind rows)
  int64_t grad_offset = 0;  // of the compact (kept x cols) gradient
  Vec<const int> index;     // kept rows, ascending
  Vec<const int> map;       // full row -> compact row, -1 if it does not train

  int64_t grad_size() const;
};

class ActiveLayout {
 public:
  ActiveLayout(const ParameterLayout& params, const ModelShape& shape, const Subnetwork& sub);

  const std::vector<ActiveSlice>& slices() const { return slices_; }
  const ActiveSlice& slice(int id, int layer) const;
  int64_t total() const { return total_; }  // gradient entries
  bool is_full() const { return full_; }
  // Gradient entries [0, ready_before_layers()) are complete once the backward pass reaches the layers, and
  // [0, ready_after_layer(l)) once it has gone through layer l (the last layer first).
  int64_t ready_before_layers() const { return layers_begin_; }
  int64_t ready_after_layer(int l) const { return layer_end_[l]; }

 private:
  void place_gradients(const ParameterLayout& params);

  std::vector<ActiveSlice> slices_;
  std::vector<int> where_;  // (id, layer) -> position in slices_
  int n_layer_;
  int64_t total_ = 0, layers_begin_ = 0;
  std::vector<int64_t> layer_end_;
  bool full_ = true;
  Kokkos::View<int*, MemSpace> indices_;  // every slice's index and map, one allocation per step
};

}  // namespace est
