#pragma once
// Training FLOPs per token, llm.c's convention (train_gpt2.cu gpt2_estimate_mfu): 6N + 6·L·C·T with N every
// parameter (padded wte included, tied LM head counted once) and the causal attention core (half of QK^T
// and A·V). Forward is a third of it.
#include "model/parameters.hpp"

namespace est {

inline const char* kFlopsFormula = "6*N + 6*L*C*T per token (llm.c, causal attention)";

inline double training_flops_per_token(const ModelShape& s, int T) {
  const double N = static_cast<double>(ParameterLayout(s).total);
  return 6.0 * N + 6.0 * s.n_layer * s.n_embd * static_cast<double>(T);
}

}  // namespace est
