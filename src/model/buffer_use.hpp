#pragma once
#include <cstdint>

namespace est {

// What a model buffer holds, for the memory plan (train/memory_plan.hpp).
enum class BufferUse {
  parameters,
  gradients,
  compact_copies,
  activations,
  attention_maps,        // materialized attention: the softmax maps
  attention_statistics,  // fused attention: a log-sum-exp per row
  logits,
  batch
};

struct BufferSize {
  const char* name;
  BufferUse use;
  int64_t bytes;
};

}  // namespace est
