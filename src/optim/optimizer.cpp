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

void AdamW::step(Model& model, float lr, float grad_scale) {
  ++t_;
  float* p = model.params().data();
  float* g = model.grads().data();
  const auto& slices = model.active().slices();
  for (size_t i = 0; i < slices.size(); ++i) {
    const ActiveSlice& s = slices[i];
    const AdamWStep step{lr, cfg_.beta1, cfg_.beta2, cfg_.eps, decay_for(layout_[s.id]), grad_scale, t_};
    switch (s.kind) {
      case SliceKind::dense: {
        // Dense neighbours that lie back to back in both buffers and decay alike: one launch covers the run.
        int64_t n = s.rows * s.cols;
        for (; i + 1 < slices.size(); n += slices[++i].grad_size()) {
          const ActiveSlice& next = slices[i + 1];
          if (next.kind != SliceKind::dense || next.offset != s.offset + n || next.grad_offset != s.grad_offset + n ||
              decay_for(layout_[next.id]) != step.weight_decay)
            break;
        }
        adamw_update(vec(p + s.offset, n), vec(m_.data() + s.offset, n), vec(v_.data() + s.offset, n),
                     cvec(g + s.grad_offset, n), step);
        break;
      }
      case SliceKind::rows:
        adamw_update_rows(mat(p + s.offset, s.rows, s.cols), mat(m_.data() + s.offset, s.rows, s.cols),
                          mat(v_.data() + s.offset, s.rows, s.cols), cmat(g + s.grad_offset, s.kept, s.cols), s.map,
                          cfg_.zero_grad_inactive, step);
        break;
      case SliceKind::none:
        if (cfg_.zero_grad_inactive) {
          const int64_t n = s.rows * s.cols;
          adamw_update_zero_grad(vec(p + s.offset, n), vec(m_.data() + s.offset, n), vec(v_.data() + s.offset, n),
                                 step);
        }
        break;
    }
  }
}

}  // namespace est
