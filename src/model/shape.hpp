#pragma once
#include <cstdint>

namespace est {

// The architecture-defining sizes of a GPT-2 model, as in llm.c's model-file header.
struct ModelShape {
  int max_seq_len = 1024;   // rows of the positional embedding
  int vocab_size = 50257;   // real tokens
  int padded_vocab_size = 50304;  // rows of wte; logits beyond vocab_size are ignored
  int n_layer = 12;
  int n_head = 12;
  int n_embd = 768;

  int head_size() const { return n_embd / n_head; }
};

// llm.c pads the vocabulary to a multiple of 128 for GEMM efficiency.
inline int pad_vocab(int vocab_size, int multiple = 128) { return (vocab_size + multiple - 1) / multiple * multiple; }

}  // namespace est
