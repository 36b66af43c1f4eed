#pragma once
#include "views.hpp"

namespace est {

// out = a + b. The backward pass is the identity on both inputs: the model accumulates the residual gradient.
void residual_forward(MatF out, CMatF a, CMatF b);

}  // namespace est
