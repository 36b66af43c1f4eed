#pragma once
// The 16 parameter tensors of GPT-2 in llm.c's order, layer-major, stored back to back in one flat buffer so
// the optimizer, the gradient norm and the model file each see one array. Matrices are llm.c's (out, in)
// row-major, except the two output projections (attprojw, fcprojw), kept as (in, out): the attention heads and
// MLP neurons EST samples, and the shards tensor parallelism splits, are then contiguous rows of every tensor.
// The llm.c model file transposes them at the boundary.
//
// Under tensor parallelism (Megatron layout) a rank holds the rows of its heads in qkvw/qkvb/attprojw and of its
// MLP neurons in fcw/fcb/fcprojw; everything else (embeddings, LayerNorms, the output biases, the LM head) is
// replicated.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "shape.hpp"

namespace est {

enum ParamId {
  WTE, WPE, LN1W, LN1B, QKVW, QKVB, ATTPROJW, ATTPROJB, LN2W, LN2B, FCW, FCB, FCPROJW, FCPROJB, LNFW, LNFB,
  kNumParams
};

// What a tensor is, for weight decay: AdamW decays matrices by default, never biases or norms, and
// embeddings only when configured.
enum class ParamKind { matrix, bias, norm, embedding };

// This rank's place in the tensor-parallel split.
struct Partition {
  int rank = 0;
  int size = 1;
};

struct ParamSpec {
  const char* name;
  ParamKind kind;
  std::vector<int64_t> shape;  // this rank's shape as stored, the layer dimension first for per-layer tensors
  bool transposed = false;     // stored as the transpose of llm.c's tensor
  bool sharded = false;        // split by rows across the tensor-parallel ranks
  int64_t size = 0;
  int64_t offset = 0;
};

struct ParameterLayout {
  std::array<ParamSpec, kNumParams> specs;
  int64_t total = 0;
  Partition partition;
  int heads = 0, neurons = 0;  // this rank's attention heads and MLP neurons per layer

  explicit ParameterLayout(const ModelShape& s, Partition p = {});
  const ParamSpec& operator[](int id) const { return specs[id]; }
  // Rows of one layer's slice of tensor `id` (of the whole tensor for the four outside the layers), and the
  // row of the unsplit tensor that local row `r` is.
  int64_t rows(int id) const;
  int64_t global_row(int id, int64_t r) const;
  bool per_layer(int id) const { return id != WTE && id != WPE && id != LNFW && id != LNFB; }

 private:
  int64_t embd_ = 0;
};

}  // namespace est
