#pragma once
// bfloat16 on the host: the top 16 bits of an fp32 (sign, the same 8-bit exponent, 7 of the 23 mantissa bits).
// bf16 GEMMs round their fp32 operands to it as CUDA's __float2bfloat16_rn does: to nearest, ties to even, NaN
// kept NaN; the fp32 range is kept, so only what lies beyond the largest bf16 rounds to infinity.
#include <cstdint>
#include <cstring>

namespace est::bf16 {

inline uint16_t from_float(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  // A NaN keeps its sign and the top of its payload, with the quiet bit set: truncated alone it could become inf.
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  // Adding 0x7fff plus the lowest kept bit carries into the kept bits exactly when the dropped half is above one
  // half of the kept unit, or equal to it with the kept part odd; a carry out of the mantissa steps the exponent
  // (past the largest finite bf16, to infinity).
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float to_float(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

}  // namespace est::bf16
