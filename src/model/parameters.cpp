#include "model/parameters.hpp"

#include <stdexcept>
#include <string>

namespace est {

ParameterLayout::ParameterLayout(const ModelShape& s, Partition p) : partition(p), embd_(s.n_embd) {
  if (p.size < 1 || s.n_head % p.size != 0 || p.rank < 0 || p.rank >= p.size)
    throw std::invalid_argument("tensor-parallel size " + std::to_string(p.size) + " must divide n_head " +
                                std::to_string(s.n_head));
  const int64_t L = s.n_layer, C = s.n_embd, Vp = s.padded_vocab_size, maxT = s.max_seq_len;
  heads = s.n_head / p.size;
  neurons = 4 * s.n_embd / p.size;
  const int64_t Ct = C / p.size, C4t = 4 * C / p.size;  // this rank's head units and neurons
  specs = {{
      {"wte", ParamKind::embedding, {Vp, C}},
      {"wpe", ParamKind::embedding, {maxT, C}},
      {"ln1w", ParamKind::norm, {L, C}},
      {"ln1b", ParamKind::norm, {L, C}},
      {"qkvw", ParamKind::matrix, {L, 3 * Ct, C}, false, true},
      {"qkvb", ParamKind::bias, {L, 3 * Ct}, false, true},
      {"attprojw", ParamKind::matrix, {L, Ct, C}, true, true},
      {"attprojb", ParamKind::bias, {L, C}},
      {"ln2w", ParamKind::norm, {L, C}},
      {"ln2b", ParamKind::norm, {L, C}},
      {"fcw", ParamKind::matrix, {L, C4t, C}, false, true},
      {"fcb", ParamKind::bias, {L, C4t}, false, true},
      {"fcprojw", ParamKind::matrix, {L, C4t, C}, true, true},
      {"fcprojb", ParamKind::bias, {L, C}},
      {"lnfw", ParamKind::norm, {C}},
      {"lnfb", ParamKind::norm, {C}},
  }};
  for (auto& spec : specs) {
    spec.size = 1;
    for (int64_t d : spec.shape) spec.size *= d;
    spec.offset = total;
    total += spec.size;
  }
}

int64_t ParameterLayout::rows(int id) const {
  const ParamSpec& p = specs[id];
  return per_layer(id) ? p.shape[1] : p.shape[0];
}

int64_t ParameterLayout::global_row(int id, int64_t r) const {
  if (!specs[id].sharded) return r;
  if (id == QKVW || id == QKVB) {
    // q, k and v each keep this rank's heads: three blocks of C / tp rows.
    const int64_t block = embd_ / partition.size;
    return (r / block) * embd_ + partition.rank * block + r % block;
  }
  return partition.rank * rows(id) + r;
}

}  // namespace est
