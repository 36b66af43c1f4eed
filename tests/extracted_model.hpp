#pragma once
// What the subnetwork tests of both architectures share: a batch and noisy weights that make every path carry
// gradient, and the check of a subnetwork's loss and gradient against the dense smaller model extracted from it
// (a double-precision reference, differentiated by central differences).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "model/model.hpp"
#include "test_util.hpp"

namespace est::test {

struct Batch {
  std::vector<int> tokens, targets;
};

inline Batch batch_for(const Model& m, unsigned seed) {
  const int BT = m.batch_size() * m.seq_len(), V = m.shape().vocab_size;
  Batch b{std::vector<int>(BT), std::vector<int>(BT)};
  for (int i = 0; i < BT; ++i) {
    b.tokens[i] = int((i * 37 + seed * 11) % V);
    b.targets[i] = int((i * 53 + seed * 7 + 1) % V);
  }
  return b;
}

// The architecture's initialisation plus noise, so every path carries a measurable gradient.
inline void init_noisy(Model& m, unsigned seed) {
  m.init_random(seed);
  auto p = to_host(m.params());
  const auto noise = randn(p.size(), seed + 100, 0.2f);
  for (size_t i = 0; i < p.size(); ++i) p[i] += noise[i];
  Kokkos::deep_copy(m.params(), Kokkos::View<const float*, Kokkos::HostSpace, Unmanaged>(p.data(), p.size()));
}

inline std::vector<int> all(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

// Per (tensor, layer): the reference's values and the factor they carry (dL/dtheta = factor dL/dtheta').
struct Folded {
  std::vector<double>* values;
  double factor;
};

// The model's last forward_backward on `b` (loss, compact gradient g) against `ref.loss` and its central
// differences, entry by entry of every slice that trains; field(id, layer) names the reference's copy.
template <class Reference, class Field>
void expect_matches_reference(const Model& m, float loss, const std::vector<float>& g, const Reference& ref,
                              const Field& field, const Batch& b) {
  const int B = m.batch_size(), T = m.seq_len();
  const double ref_loss = ref.loss(b.tokens, b.targets, B, T);
  EXPECT_NEAR(loss, ref_loss, 2e-5 * std::abs(ref_loss));
  int64_t checked = 0;
  for (const ActiveSlice& s : m.active().slices()) {
    if (s.kind == SliceKind::none) continue;
    Folded f = field(s.id, s.layer);
    ASSERT_EQ(int64_t(f.values->size()), s.grad_size()) << m.layout()[s.id].name << " layer " << s.layer;
    // Embedding tables are large and always dense: a sample of their entries is enough.
    const int64_t stride = s.layer < 0 && s.grad_size() > 256 ? 7 : 1;
    for (int64_t i = 0; i < s.grad_size(); i += stride) {
      double& theta = (*f.values)[i];
      const double saved = theta, h = 1e-6 * std::max(1.0, std::abs(saved));
      theta = saved + h;
      const double up = ref.loss(b.tokens, b.targets, B, T);
      theta = saved - h;
      const double down = ref.loss(b.tokens, b.targets, B, T);
      theta = saved;
      const double want = f.factor * (up - down) / (2 * h);
      ASSERT_NEAR(g[s.grad_offset + i], want, 3e-5 + 3e-3 * std::abs(want))
          << "tensor " << m.layout()[s.id].name << " layer " << s.layer << " compact entry " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000);
}

}  // namespace est::test
