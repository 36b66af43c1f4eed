#pragma once
// A model's parameter tensors, layer-major, stored back to back in one flat buffer so the optimizer, the
// gradient norm and the checkpoint each see one array. Each architecture lists its tensors (GPT2::parameters,
// Llama::parameters); this layout places them and splits them for tensor parallelism.
//
// Matrices are PyTorch's (out, in) row-major, except the output projections of attention and MLP, kept as
// (in, out): the attention heads and MLP neurons EST samples, and the shards tensor parallelism splits, are then
// contiguous rows of every tensor. Model files transpose them at the boundary.
//
// A sharded tensor's rows are blocks of heads or neurons (q, k, v; gate, up): under tensor parallelism (Megatron
// layout) a rank holds its share of each block, and a subnetwork keeps the rows of its active units in each.
#include <cstdint>
#include <string>
#include <vector>

#include "shape.hpp"

namespace est {

// GPT-2's 16 tensors, in llm.c's order.
enum ParamId {
  WTE, WPE, LN1W, LN1B, QKVW, QKVB, ATTPROJW, ATTPROJB, LN2W, LN2B, FCW, FCB, FCPROJW, FCPROJB, LNFW, LNFB,
  kNumParams
};

// What a tensor is, for weight decay: AdamW decays matrices by default, never biases or norms, and
// embeddings only when configured.
enum class ParamKind { matrix, bias, norm, embedding };

// What a block of a sharded tensor's rows is made of: head_size rows per query head or key/value head, or one
// row per MLP neuron.
enum class Units { q_heads, kv_heads, neurons };

// This rank's place in the tensor-parallel split.
struct Partition {
  int rank = 0;
  int size = 1;
};

struct ParamSpec {
  const char* name;
  ParamKind kind;
  std::vector<int64_t> shape;  // this rank's shape as stored, the layer dimension first for per-layer tensors
  bool transposed = false;     // stored as the transpose of the reference implementation's tensor
  bool per_layer = false;
  std::vector<Units> blocks = {};  // a sharded tensor's row blocks, in order; empty: replicated
  int64_t size = 0;
  int64_t offset = 0;

  bool sharded() const { return !blocks.empty(); }
};

struct ParameterLayout {
  std::vector<ParamSpec> specs;
  int64_t total = 0;
  Partition partition;
  // This rank's share per layer: query heads, key/value heads, MLP neurons.
  int heads = 0, kv_heads = 0, neurons = 0;
  int head_size = 0;

  explicit ParameterLayout(const ModelShape& s, Partition p = {});
  int count() const { return int(specs.size()); }
  const ParamSpec& operator[](int id) const { return specs[id]; }
  // Rows of one layer's slice of tensor `id` (of the whole tensor for those outside the layers), and the
  // row of the unsplit tensor that local row `r` is.
  int64_t rows(int id) const;
  int64_t global_row(int id, int64_t r) const;
  bool per_layer(int id) const { return specs[id].per_layer; }
  // This rank's rows in a block of `u`.
  int64_t block_rows(Units u) const;

 private:
  explicit ParameterLayout(Partition p) : partition(p) {}
  // This rank's share of heads and neurons, which the architectures' lists are sized by.
  static ParameterLayout share(const ModelShape& s, Partition p);
};

}  // namespace est
