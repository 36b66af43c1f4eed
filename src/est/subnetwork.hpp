#pragma once
// One step's subnetwork: which layers run, and in each running layer which attention heads and MLP neurons.
// Everything else in the model is outside the subnetwork for that step: it computes nothing and gets no update
// (or a zero-gradient update, per est.inactive).
#include <stdexcept>
#include <vector>

#include "model/shape.hpp"

namespace est {

struct LayerSelection {
  bool active = true;
  std::vector<int> heads;    // sorted, in [0, n_head)
  std::vector<int> neurons;  // sorted, in [0, 4 * n_embd)
};

struct Subnetwork {
  std::vector<LayerSelection> layers;
  // Inverted-dropout scales: the head sum by 1/p_H, the MLP output by 1/p_M, and (layer_scaling: inverse)
  // each active layer's residual branches by 1/p_L. 1 when nothing is sampled.
  float head_scale = 1.0f;
  float mlp_scale = 1.0f;
  float layer_scale = 1.0f;
  // When the draw gave the tensor-parallel ranks fixed, unequal quotas: each rank's own scale, N_r / k_r, which
  // keeps the estimate unbiased in every step; empty otherwise.
  std::vector<float> head_scale_by_rank, mlp_scale_by_rank;

  // Every layer, head and neuron: of the whole model, or of one tensor-parallel rank's share of it.
  static Subnetwork full(int layers, int heads, int neurons) {
    Subnetwork n;
    n.layers.resize(layers);
    for (auto& l : n.layers) {
      for (int h = 0; h < heads; ++h) l.heads.push_back(h);
      for (int j = 0; j < neurons; ++j) l.neurons.push_back(j);
    }
    return n;
  }
  static Subnetwork full(const ModelShape& s) { return full(s.n_layer, s.n_head, s.neurons()); }

  // This tensor-parallel rank's part: the heads and neurons in its block (of n_head / size heads and
  // n_neurons / size neurons), renumbered from 0, with its own scales when there are per-rank ones.
  Subnetwork local_part(int rank, int size, int n_head, int n_neurons) const {
    Subnetwork part = *this;
    if (!head_scale_by_rank.empty()) {
      if (int(head_scale_by_rank.size()) != size) throw std::invalid_argument("per-rank scales of another layout");
      part.head_scale = head_scale_by_rank[rank];
      part.mlp_scale = mlp_scale_by_rank[rank];
    }
    const int hb = n_head / size, nb = n_neurons / size;
    for (LayerSelection& l : part.layers) {
      l.heads = in_block(l.heads, rank * hb, hb);
      l.neurons = in_block(l.neurons, rank * nb, nb);
    }
    return part;
  }

  int active_layers() const {
    int n = 0;
    for (const auto& l : layers) n += l.active;
    return n;
  }

 private:
  static std::vector<int> in_block(const std::vector<int>& units, int first, int count) {
    std::vector<int> kept;
    for (int u : units)
      if (u >= first && u < first + count) kept.push_back(u - first);
    return kept;
  }
};

}  // namespace est
