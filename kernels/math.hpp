#pragma once
// Device-callable math. Kokkos 3.4 keeps these in Kokkos::Experimental, Kokkos 4 in Kokkos.
#include <Kokkos_Core.hpp>
#include <cstdint>
#include <cstring>

namespace est::kmath {

#if KOKKOS_VERSION >= 30700
using Kokkos::cos;
using Kokkos::exp;
using Kokkos::log;
using Kokkos::sqrt;
#else
using Kokkos::Experimental::cos;
using Kokkos::Experimental::exp;
using Kokkos::Experimental::log;
using Kokkos::Experimental::sqrt;
#endif

// exp(x) in plain arithmetic (Cephes expf: Cody-Waite reduction, degree-6 polynomial, 2^n through the
// exponent bits), within 2 ulp. Unlike a libm call, loops over it vectorise on CPUs; GPUs run it as is.
KOKKOS_INLINE_FUNCTION float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);  // keeps 2^n a normal float
  // Round to nearest by the 1.5*2^23 trick: plain adds vectorise where floor() does not (GCC, trapping math).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// 1 / (1 + exp(-x))
KOKKOS_INLINE_FUNCTION float sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

}  // namespace est::kmath
