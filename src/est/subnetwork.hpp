#pragma once
// One step's subnetwork: which layers run, and in each running layer which attention heads and MLP neurons.
// Everything else in the model is outside the subnetwork for that step: it computes nothing and gets no update
// (or a zero-gradient update, per est.inactive).
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

  static Subnetwork full(const ModelShape& s) {
    Subnetwork n;
    n.layers.resize(s.n_layer);
    for (auto& l : n.layers) {
      for (int h = 0; h < s.n_head; ++h) l.heads.push_back(h);
      for (int j = 0; j < 4 * s.n_embd; ++j) l.neurons.push_back(j);
    }
    return n;
  }

  int active_layers() const {
    int n = 0;
    for (const auto& l : layers) n += l.active;
    return n;
  }
};

}  // namespace est
