#pragma once
#include <cstdint>
#include <string>

namespace est {

// The model families est trains; each is a Model subclass beside its siblings (model/gpt2.hpp, model/llama.hpp).
enum class Arch { gpt2, llama };

inline const char* arch_name(Arch a) { return a == Arch::llama ? "llama" : "gpt2"; }
inline bool parse_arch(const std::string& s, Arch& a) {
  if (s == "gpt2") a = Arch::gpt2;
  else if (s == "llama") a = Arch::llama;
  else return false;
  return true;
}

// The architecture-defining sizes of a model: for GPT-2 those of llm.c's model-file header, for Llama those of
// llama2.c's plus its norm epsilon and RoPE base.
struct ModelShape {
  Arch arch = Arch::gpt2;
  int max_seq_len = 1024;   // positions: rows of GPT-2's positional embedding, the context of a Llama
  int vocab_size = 50257;   // real tokens
  int padded_vocab_size = 50304;  // rows of wte; logits beyond vocab_size are ignored
  int n_layer = 12;
  int n_head = 12;
  int n_embd = 768;
  int n_kv_head = 0;        // Llama's key/value heads (grouped-query attention); 0: n_head
  int mlp_hidden = 0;       // MLP neurons; 0: 4 n_embd (GPT-2's)
  float norm_eps = 1e-5f;   // Llama's RMSNorm epsilon
  float rope_theta = 10000.0f;
  bool tie_embeddings = true;  // the LM head is wte (GPT-2); Llama's default is a separate one

  int head_size() const { return n_embd / n_head; }
  int kv_heads() const { return n_kv_head > 0 ? n_kv_head : n_head; }
  int neurons() const { return mlp_hidden > 0 ? mlp_hidden : 4 * n_embd; }
  // Query heads that share one key/value head.
  int group_size() const { return n_head / kv_heads(); }
};

// One line for reports, e.g. "llama, 22 layers, n_embd 2048, 32 heads over 4 KV heads, 5632 MLP neurons".
inline std::string describe(const ModelShape& s) {
  std::string d = std::string(arch_name(s.arch)) + ", " + std::to_string(s.n_layer) + " layers, n_embd " +
                  std::to_string(s.n_embd) + ", " + std::to_string(s.n_head) + " heads";
  if (s.kv_heads() != s.n_head) d += " over " + std::to_string(s.kv_heads()) + " KV heads";
  return d + ", " + std::to_string(s.neurons()) + " MLP neurons";
}

// The first field of a shape read from a file that no model can have, and why; an empty field when there is none.
struct ShapeProblem {
  std::string field, reason;
};
inline ShapeProblem shape_problem(const ModelShape& s) {
  if (s.n_layer < 1) return {"n_layer", "must be >= 1"};
  if (s.n_head < 1) return {"n_head", "must be >= 1"};
  if (s.n_embd < 1 || s.n_embd % s.n_head != 0) return {"n_embd", "must be a positive multiple of n_head"};
  if (s.vocab_size < 1) return {"vocab_size", "must be >= 1"};
  if (s.padded_vocab_size < s.vocab_size) return {"padded_vocab_size", "must be >= vocab_size"};
  if (s.max_seq_len < 1) return {"max_seq_len", "must be >= 1"};
  if (s.n_kv_head < 0 || s.n_head % s.kv_heads() != 0) return {"n_kv_head", "must divide n_head"};
  if (s.mlp_hidden < 0) return {"mlp_hidden", "must be >= 0"};
  if (s.arch == Arch::llama && s.head_size() % 2 != 0) return {"n_embd", "n_embd / n_head must be even (RoPE rotates pairs)"};
  return {};
}

// llm.c pads the vocabulary to a multiple of 128 for GEMM efficiency.
inline int pad_vocab(int vocab_size, int multiple = 128) { return (vocab_size + multiple - 1) / multiple * multiple; }

// Llama's MLP width: 8/3 n_embd rounded up to a multiple of `multiple_of` (the Llama reference's rule).
inline int llama_mlp_hidden(int n_embd, int multiple_of) {
  const int64_t h = int64_t(8) * n_embd / 3;
  return int((h + multiple_of - 1) / multiple_of * multiple_of);
}

}  // namespace est
