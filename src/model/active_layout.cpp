#include "model/active_layout.hpp"

namespace est {

namespace {

std::vector<int> head_units(const std::vector<int>& heads, int hs) {
  std::vector<int> idx;
  for (int h : heads)
    for (int d = 0; d < hs; ++d) idx.push_back(h * hs + d);
  return idx;
}

// The key/value heads the active query heads read, each once: a query head h of this rank reads its group's,
// h / group_size (a rank holds whole groups).
std::vector<int> kv_heads_of(const std::vector<int>& heads, int group_size) {
  std::vector<int> kv;
  for (int h : heads)
    if (kv.empty() || kv.back() != h / group_size) kv.push_back(h / group_size);
  return kv;
}

// The rows of a sharded tensor's slice that a layer's selection keeps, block by block: in each block the rows
// of its active units, so the compact tensor keeps the blocks' order (q, k, v; gate, up) for the kernels.
std::vector<int> kept_rows(const ParamSpec& spec, const ParameterLayout& params, const LayerSelection& sel) {
  const int hs = params.head_size;
  std::vector<int> idx;
  int64_t start = 0;
  for (Units u : spec.blocks) {
    std::vector<int> units;
    switch (u) {
      case Units::q_heads: units = head_units(sel.heads, hs); break;
      case Units::kv_heads: units = head_units(kv_heads_of(sel.heads, params.heads / params.kv_heads), hs); break;
      case Units::neurons: units = sel.neurons; break;
    }
    for (int r : units) idx.push_back(int(start + r));
    start += params.block_rows(u);
  }
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
    : where_(size_t(params.count()) * (shape.n_layer + 1), -1), n_layer_(shape.n_layer) {
  // Index lists are gathered on the host, then copied to the device once.
  std::vector<int> host;
  struct Pending { size_t slice; size_t index_at, map_at; };
  std::vector<Pending> pending;

  for (int id = 0; id < params.count(); ++id) {
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
        const std::vector<int> units = spec.sharded() && sel.active ? kept_rows(spec, params, sel) : std::vector<int>();
        if (!sel.active) {
          s.kind = SliceKind::none;
        } else if (spec.sharded() && int64_t(units.size()) < s.rows) {
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
      where_[size_t(id) * (n_layer_ + 1) + (s.layer + 1)] = int(slices_.size());
      slices_.push_back(s);
    }
  }

  place_gradients(params);
  if (host.empty()) return;
  indices_ = Kokkos::View<int*, MemSpace>("active_indices", host.size());
  Kokkos::deep_copy(indices_, Kokkos::View<const int*, Kokkos::HostSpace, Unmanaged>(host.data(), host.size()));
  for (const Pending& p : pending) {
    ActiveSlice& s = slices_[p.slice];
    s.index = Vec<const int>(indices_.data() + p.index_at, s.kept);
    s.map = Vec<const int>(indices_.data() + p.map_at, s.rows);
  }
}

void ActiveLayout::place_gradients(const ParameterLayout& params) {
  const auto place = [&](ActiveSlice& s) {
    s.grad_offset = total_;
    total_ += s.grad_size();
  };
  // The encoder's backward pass, the last of all, completes the embeddings (a tied LM head's included).
  const auto late = [&](const ActiveSlice& s) { return s.layer < 0 && params[s.id].kind == ParamKind::embedding; };
  for (ActiveSlice& s : slices_)
    if (s.layer < 0 && !late(s)) place(s);
  layers_begin_ = total_;
  layer_end_.assign(size_t(n_layer_), 0);
  for (int l = n_layer_ - 1; l >= 0; --l) {
    for (ActiveSlice& s : slices_)
      if (s.layer == l) place(s);
    layer_end_[size_t(l)] = total_;
  }
  for (ActiveSlice& s : slices_)
    if (late(s)) place(s);
}

const ActiveSlice& ActiveLayout::slice(int id, int layer) const {
  return slices_[where_[size_t(id) * (n_layer_ + 1) + (layer + 1)]];
}

}  // namespace est
