#include "gelu.hpp"

#include "math.hpp"

namespace est {

namespace {
constexpr float kScale = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kCube = 0.044715f;
}  // namespace

// 0.5 (1 + tanh(u)) = sigmoid(2u): one exp instead of a libm tanh.
void gelu_forward(MatF out, CMatF inp) {
  const int64_t n = inp.size();
  VecF o(out.data(), n);
  CVecF x(inp.data(), n);
  Kokkos::parallel_for(
      "gelu_forward", RangePolicy(0, n), KOKKOS_LAMBDA(const int64_t i) {
        const float v = x(i);
        const float u = kScale * (v + kCube * v * v * v);
        o(i) = v * kmath::sigmoid(2.0f * u);
      });
}

void gelu_backward(MatF dinp, CMatF inp, CMatF dout) {
  const int64_t n = inp.size();
  VecF di(dinp.data(), n);
  CVecF x(inp.data(), n), d(dout.data(), n);
  Kokkos::parallel_for(
      "gelu_backward", RangePolicy(0, n), KOKKOS_LAMBDA(const int64_t i) {
        const float v = x(i);
        const float u = kScale * (v + kCube * v * v * v);
        const float s = kmath::sigmoid(2.0f * u);
        // d/dv [v s(2u)] = s + v s (1 - s) 2 du/dv
        const float grad = s + v * s * (1.0f - s) * 2.0f * kScale * (1.0f + 3.0f * kCube * v * v);
        di(i) = grad * d(i);
      });
}

}  // namespace est
