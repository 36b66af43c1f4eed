#pragma once
// The 16 parameter tensors of GPT-2 in llm.c's order, layer-major, stored back to back in one flat buffer so
// the optimizer, the gradient norm and the model file each see one array. Matrices are llm.c's (out, in)
// row-major, except the two output projections (attprojw, fcprojw), kept as (in, out): the attention heads and
// MLP neurons EST samples, and the shards tensor parallelism splits, are then contiguous rows of every tensor.
// The llm.c model file transposes them at the boundary.
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

struct ParamSpec {
  const char* name;
  ParamKind kind;
  std::vector<int64_t> shape;  // full shape as stored, the layer dimension first for per-layer tensors
  bool transposed = false;     // stored as the transpose of llm.c's tensor
  int64_t size = 0;
  int64_t offset = 0;
};

struct ParameterLayout {
  std::array<ParamSpec, kNumParams> specs;
  int64_t total = 0;

  explicit ParameterLayout(const ModelShape& s);
  const ParamSpec& operator[](int id) const { return specs[id]; }
};

}  // namespace est
