#pragma once
#include "views.hpp"

namespace est {

// x[i] = std * N(0,1), element i drawn from Philox(key=seed, counter=(i, stream)): independent of the order
// and the device that fills it.
void fill_normal(VecF x, uint64_t seed, uint64_t stream, float std);
void fill_constant(VecF x, float value);

}  // namespace est
