#include "model/architectures.hpp"

#include "model/gpt2.hpp"
#include "model/llama.hpp"

namespace est {

std::unique_ptr<Model> make_model(const ModelShape& shape, int B, int T, const TensorParallel& tp,
                                  AttentionKind attention) {
  if (shape.arch == Arch::llama) return std::make_unique<Llama>(shape, B, T, tp, attention);
  return std::make_unique<GPT2>(shape, B, T, tp, attention);
}

std::vector<BufferSize> model_buffer_sizes(const ModelShape& shape, int B, int T, Partition p,
                                           AttentionKind attention) {
  return shape.arch == Arch::llama ? Llama::buffer_sizes(shape, B, T, p, attention)
                                   : GPT2::buffer_sizes(shape, B, T, p, attention);
}

}  // namespace est
