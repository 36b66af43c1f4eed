#include "model/parameters.hpp"

#include <stdexcept>
#include <string>

#include "model/gpt2.hpp"
#include "model/llama.hpp"

namespace est {

ParameterLayout ParameterLayout::share(const ModelShape& s, Partition p) {
  // A rank holds whole key/value groups with their query heads (for GPT-2 every head is its own group).
  if (p.size < 1 || s.kv_heads() % p.size != 0 || p.rank < 0 || p.rank >= p.size)
    throw std::invalid_argument("tensor-parallel size " + std::to_string(p.size) + " must divide " +
                                (s.kv_heads() == s.n_head ? "n_head " : "n_kv_head ") + std::to_string(s.kv_heads()));
  if (s.neurons() % p.size != 0)
    throw std::invalid_argument("tensor-parallel size " + std::to_string(p.size) + " must divide the MLP's " +
                                std::to_string(s.neurons()) + " neurons");
  ParameterLayout l(p);
  l.heads = s.n_head / p.size;
  l.kv_heads = s.kv_heads() / p.size;
  l.neurons = s.neurons() / p.size;
  l.head_size = s.head_size();
  return l;
}

ParameterLayout::ParameterLayout(const ModelShape& s, Partition p) : ParameterLayout(share(s, p)) {
  specs = s.arch == Arch::llama ? Llama::parameters(s, *this) : GPT2::parameters(s, *this);
  for (auto& spec : specs) {
    spec.size = 1;
    for (int64_t d : spec.shape) spec.size *= d;
    spec.offset = total;
    total += spec.size;
  }
}

int64_t ParameterLayout::rows(int id) const {
  const ParamSpec& p = specs[id];
  return p.per_layer ? p.shape[1] : p.shape[0];
}

int64_t ParameterLayout::block_rows(Units u) const {
  switch (u) {
    case Units::q_heads: return int64_t(heads) * head_size;
    case Units::kv_heads: return int64_t(kv_heads) * head_size;
    case Units::neurons: return neurons;
  }
  return 0;
}

int64_t ParameterLayout::global_row(int id, int64_t r) const {
  // Block by block: this rank's share of a block is the rank-th of its equal parts.
  int64_t global_start = 0;
  for (Units u : specs[id].blocks) {
    const int64_t n = block_rows(u);
    if (r < n) return global_start + partition.rank * n + r;
    r -= n;
    global_start += n * partition.size;
  }
  return r;  // replicated
}

}  // namespace est
