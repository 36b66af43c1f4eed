#pragma once
#include "views.hpp"

namespace est {

// out = inp * rstd * weight per row, rstd = 1 / sqrt(mean(inp^2) + eps); rstd is kept for the backward pass.
void rmsnorm_forward(MatF out, VecF rstd, CMatF inp, CVecF weight, float eps);
// dinp += RMSNorm'(dout) (it accumulates into the residual gradient); dweight is overwritten.
void rmsnorm_backward(MatF dinp, VecF dweight, CMatF dout, CMatF inp, CVecF weight, CVecF rstd);

}  // namespace est
