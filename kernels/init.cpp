#include "init.hpp"

#include "math.hpp"
#include "philox.hpp"

namespace est {

void fill_normal(VecF x, uint64_t seed, uint64_t stream, float std) {
  Kokkos::parallel_for(
      "fill_normal", RangePolicy(0, x.extent(0)), KOKKOS_LAMBDA(const int64_t i) {
        const Philox4 r = philox4x32(seed, static_cast<uint64_t>(i), stream);
        const double u1 = uniform_from_u64((uint64_t(r.v[0]) << 32) | r.v[1]);
        const double u2 = uniform_from_u64((uint64_t(r.v[2]) << 32) | r.v[3]);
        // Box-Muller
        const double z = kmath::sqrt(-2.0 * kmath::log(u1)) * kmath::cos(6.283185307179586 * u2);
        x(i) = static_cast<float>(z) * std;
      });
}

void fill_constant(VecF x, float value) { Kokkos::deep_copy(x, value); }

}  // namespace est
