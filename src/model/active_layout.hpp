#pragma once
// What a subnetwork trains, and where its gradient lives. Each per-layer tensor of an active layer is a slice:
// dense (all of it), or only some rows: the query rows and attention-projection rows of the active heads, the
// key/value rows of the key/value heads they read, the MLP rows of the active neurons (parameters.hpp keeps the
// projections input-major for this).
// The gradient stores each slice compactly, back to back in the parameter order, so for the full model it is
// the plain gradient in the parameter layout, and a subnetwork's gradient is exactly as large as the subnetwork.
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

 private:
  std::vector<ActiveSlice> slices_;
  std::vector<int> where_;  // (id, layer) -> position in slices_
  int n_layer_;
  int64_t total_ = 0;
  bool full_ = true;
  Kokkos::View<int*, MemSpace> indices_;  // every slice's index and map, one allocation per step
};

}  // namespace est
