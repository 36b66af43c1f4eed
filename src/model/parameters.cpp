#include "parameters.hpp"

namespace est {

ParameterLayout::ParameterLayout(const ModelShape& s) {
  const int64_t L = s.n_layer, C = s.n_embd, Vp = s.padded_vocab_size, maxT = s.max_seq_len;
  specs = {{
      {"wte", ParamKind::embedding, {Vp, C}},
      {"wpe", ParamKind::embedding, {maxT, C}},
      {"ln1w", ParamKind::norm, {L, C}},
      {"ln1b", ParamKind::norm, {L, C}},
      {"qkvw", ParamKind::matrix, {L, 3 * C, C}},
      {"qkvb", ParamKind::bias, {L, 3 * C}},
      {"attprojw", ParamKind::matrix, {L, C, C}, true},
      {"attprojb", ParamKind::bias, {L, C}},
      {"ln2w", ParamKind::norm, {L, C}},
      {"ln2b", ParamKind::norm, {L, C}},
      {"fcw", ParamKind::matrix, {L, 4 * C, C}},
      {"fcb", ParamKind::bias, {L, 4 * C}},
      {"fcprojw", ParamKind::matrix, {L, 4 * C, C}, true},
      {"fcprojb", ParamKind::bias, {L, C}},
      {"lnfw", ParamKind::norm, {C}},
      {"lnfb", ParamKind::norm, {C}},
  }};
  for (auto& p : specs) {
    p.size = 1;
    for (int64_t d : p.shape) p.size *= d;
    p.offset = total;
    total += p.size;
  }
}

}  // namespace est
