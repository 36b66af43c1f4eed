#pragma once
#include "views.hpp"

namespace est {

// out = a + scale * b: the residual stream plus a branch (scale 1/p_L under EST's inverse layer scaling).
void residual_forward(MatF out, CMatF a, CMatF b, float scale = 1.0f);
// The stream's gradient passes through unchanged (the model accumulates it); the branch's is scale * dout.
void residual_branch_backward(MatF dbranch, CMatF dout, float scale);

}  // namespace est
