#pragma once
#include "model/shape.hpp"

namespace est {

// What EST samples of the attention: whole key/value groups with all their query heads, so the key and value
// projections shrink with the query ones, or single query heads, each of which needs its group's key/value
// head (finer draws, smaller savings on k and v). For multi-head attention (GPT-2) the two are the same.
enum class HeadUnit { kv_group, query };

// The units heads are drawn in: `count` of them, of `size` query heads each.
struct HeadUnits {
  int count, size;
};
inline HeadUnits head_units(const ModelShape& s, HeadUnit u) {
  return u == HeadUnit::kv_group ? HeadUnits{s.kv_heads(), s.group_size()} : HeadUnits{s.n_head, 1};
}

}  // namespace est
