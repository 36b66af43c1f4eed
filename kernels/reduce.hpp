#pragma once
#include "views.hpp"

namespace est {

// sum_i x_i^2, accumulated in double across blocks.
double sum_of_squares(CVecF x);

}  // namespace est
