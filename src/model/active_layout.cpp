#include "model/active_layout.hpp"

namespace est {

namespace {

// The rows a subnetwork keeps of each per-layer tensor.
enum class Keep { all, qkv_rows, head_rows, neuron_rows };

Keep keep_for(int id) {
  switch (id) {
    case QKVW: case QKVB: return Keep::qkv_rows;
    case ATTPROJW: return Keep::head_rows;
    case FCW: case FCB: case FCPROJW: return Keep::neuron_rows;
    default: return Keep::all;  // LayerNorms and the output biases (added once, unscaled)
  }
}

std::vector<int> head_units(const std::vector<int>& heads, int hs) {
  std::vector<int> idx;
  for (int h : heads)
    for (int d = 0; d < hs; ++d) idx.push_back(h * hs + d);
  return idx;
}

// q, k and v rows of the active heads, in that order: the compact qkv has the attention kernel's layout.
// `block` is the rows of each of q, k and v that this rank holds.
std::vector<int> qkv_units(const std::vector<int>& heads, int hs, int block) {
  std::vector<int> idx;
  for (int b = 0; b < 3; ++b)
    for (int u : head_units(heads, hs)) idx.push_back(b * block + u);
  return idx;
}

}  // namespace

int64_t ActiveSlice::grad_size() const {
  switch (kind) {
    case SliceKind::dense: return rows * cols;
    case SliceKind::rows: return kept * cols;
    case SliceKind::none: return 0;
  }
  return 0;
}

ActiveLayout::ActiveLayout(const ParameterLayout& params, const ModelShape& shape, const Subnetwork& sub)
    : where_(size_t(kNumParams) * (shape.n_layer + 1), -1), n_layer_(shape.n_layer) {
  const int hs = shape.head_size(), block = params.heads * hs;
  // Index lists are gathered on the host, then copied to the device once.
  std::vector<int> host;
  struct Pending { size_t slice; size_t index_at, map_at; };
  std::vector<Pending> pending;

  for (int id = 0; id < kNumParams; ++id) {
    const ParamSpec& spec = params[id];
    const bool per_layer = params.per_layer(id);
    const int layers = per_layer ? shape.n_layer : 1;
    const int64_t size = spec.size / layers, rows = params.rows(id);
    for (int l = 0; l < layers; ++l) {
      ActiveSlice s;
      s.id = id;
      s.layer = per_layer ? l : -1;
      s.offset = spec.offset + l * size;
      s.rows = rows;
      s.cols = size / rows;
      s.kind = SliceKind::dense;
      s.kept = 0;
      if (per_layer) {
        const LayerSelection& sel = sub.layers[l];
        std::vector<int> units;
        switch (keep_for(id)) {
          case Keep::all: break;
          case Keep::qkv_rows: units = qkv_units(sel.heads, hs, block); break;
          case Keep::head_rows: units = head_units(sel.heads, hs); break;
          case Keep::neuron_rows: units = sel.neurons; break;
        }
        if (!sel.active) {
          s.kind = SliceKind::none;
        } else if (keep_for(id) != Keep::all && int64_t(units.size()) < s.rows) {
          s.kind = SliceKind::rows;
          s.kept = int64_t(units.size());
          std::vector<int> map(s.rows, -1);
          for (size_t i = 0; i < units.size(); ++i) map[units[i]] = int(i);
          pending.push_back({slices_.size(), host.size(), host.size() + units.size()});
          host.insert(host.end(), units.begin(), units.end());
          host.insert(host.end(), map.begin(), map.end());
        }
      }
      if (s.kind != SliceKind::dense) full_ = false;
      s.grad_offset = total_;
      total_ += s.grad_size();
      where_[size_t(id) * (n_layer_ + 1) + (s.layer + 1)] = int(slices_.size());
      slices_.push_back(s);
    }
  }

  if (host.empty()) return;
  indices_ = Kokkos::View<int*, MemSpace>("active_indices", host.size());
  Kokkos::deep_copy(indices_, Kokkos::View<const int*, Kokkos::HostSpace, Unmanaged>(host.data(), host.size()));
  for (const Pending& p : pending) {
    ActiveSlice& s = slices_[p.slice];
    s.index = Vec<const int>(indices_.data() + p.index_at, s.kept);
    s.map = Vec<const int>(indices_.data() + p.map_at, s.rows);
  }
}

const ActiveSlice& ActiveLayout::slice(int id, int layer) const {
  return slices_[where_[size_t(id) * (n_layer_ + 1) + (layer + 1)]];
}

}  // namespace est
