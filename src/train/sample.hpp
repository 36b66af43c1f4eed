#pragma once
// est sample: a continuation of a prompt from a model file, llm.c's (GPT-2) or llama2.c's (Llama), told apart by
// llm.c's magic. The model is est's own at batch 1, rerun over the whole window (the last max_seq_len tokens)
// for every new token: no KV cache to keep right, at a cost that suits samples of a few hundred tokens.
//
// A byte-level model (vocabulary 256, as `est data prepare` makes) reads the prompt as bytes and prints text;
// any other reads space-separated token ids and prints ids, or text through an llm.c tokenizer file.
#include <cstdint>
#include <cstdio>
#include <string>

namespace est {

struct SampleRequest {
  std::string model;         // model file
  std::string prompt;
  int tokens = 128;          // tokens to generate
  double temperature = 1.0;  // 0: always the most likely token
  uint64_t seed = 1337;      // of the draws: a seed reproduces a sample
  std::string tokenizer;     // optional llm.c tokenizer file, for decoding
  std::string logits;        // optional .npy file: the prompt window's logits (positions, vocab_size)
};

// Writes the prompt and then each new token to `out` as it comes, and a final newline. Throws InputError for a
// bad file, prompt or setting.
void run_sample(const SampleRequest& request, std::FILE* out);

}  // namespace est
