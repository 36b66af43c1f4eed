#include "optim/optimizer.hpp"

namespace est {

AdamW::AdamW(const ParameterLayout& layout, const AdamWConfig& cfg)
    : layout_(layout), cfg_(cfg), m_("adamw_m", layout.total), v_("adamw_v", layout.total) {}

float AdamW::decay_for(const ParamSpec& p) const {
  switch (p.kind) {
    case ParamKind::matrix: return cfg_.weight_decay;
    case ParamKind::embedding: return cfg_.decay_embeddings ? cfg_.weight_decay : 0.0f;
    default: return 0.0f;
  }
}

void AdamW::step(Buffer params, Buffer grads, float lr, float grad_scale) {
  ++t_;
  for (const ParamSpec& p : layout_.specs) {
    const auto range = std::make_pair(p.offset, p.offset + p.size);
    AdamWStep s{lr, cfg_.beta1, cfg_.beta2, cfg_.eps, decay_for(p), grad_scale, t_};
    adamw_update(Kokkos::subview(params, range), Kokkos::subview(m_, range), Kokkos::subview(v_, range),
                 Kokkos::subview(grads, range), s);
  }
}

}  // namespace est
