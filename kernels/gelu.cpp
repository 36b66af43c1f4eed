#include "gelu.hpp"

#include "math.hpp"

namespace est {

namespace {
constexpr float kScale = 0.7978845608028654f;  // sqrt(2/pi)
}

void gelu_forward(MatF out, CMatF inp) {
  const int64_t n = inp.size();
  VecF o(out.data(), n);
  CVecF x(inp.data(), n);
  Kokkos::parallel_for(
      "gelu_forward", RangePolicy(0, n), KOKKOS_LAMBDA(const int64_t i) {
        const float v = x(i);
        const float u = kScale * (v + 0.044715f * v * v * v);
        o(i) = 0.5f * v * (1.0f + kmath::tanh(u));
      });
}

void gelu_backward(MatF dinp, CMatF inp, CMatF dout) {
  const int64_t n = inp.size();
  VecF di(dinp.data(), n);
  CVecF x(inp.data(), n), d(dout.data(), n);
  Kokkos::parallel_for(
      "gelu_backward", RangePolicy(0, n), KOKKOS_LAMBDA(const int64_t i) {
        const float v = x(i);
        const float u = kScale * (v + 0.044715f * v * v * v);
        const float t = kmath::tanh(u);
        const float sech2 = 1.0f - t * t;
        const float grad = 0.5f * (1.0f + t) + 0.5f * v * sech2 * kScale * (1.0f + 3.0f * 0.044715f * v * v);
        di(i) = grad * d(i);
      });
}

}  // namespace est
