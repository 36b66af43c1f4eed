#pragma once
// The one place that maps an architecture to its Model subclass.
#include <memory>
#include <vector>

#include "model/model.hpp"

namespace est {

std::unique_ptr<Model> make_model(const ModelShape& shape, int B, int T, const TensorParallel& tp = {},
                                  AttentionKind attention = AttentionKind::materialized);
// What make_model's model allocates, buffer by buffer (the memory plan's model items).
std::vector<BufferSize> model_buffer_sizes(const ModelShape& shape, int B, int T, Partition p = {},
                                           AttentionKind attention = AttentionKind::materialized);

}  // namespace est
