#pragma once
#include <string>

namespace est {

// How a model computes causal attention (model/causal_attention.hpp): keeping each layer's softmax maps for the
// backward pass, or fused, keeping a log-sum-exp per row and recomputing the maps there.
enum class AttentionKind { materialized, fused };

inline const char* attention_kind_name(AttentionKind k) { return k == AttentionKind::fused ? "fused" : "materialized"; }
inline bool parse_attention_kind(const std::string& s, AttentionKind& k) {
  if (s == "materialized") k = AttentionKind::materialized;
  else if (s == "fused") k = AttentionKind::fused;
  else return false;
  return true;
}

}  // namespace est
