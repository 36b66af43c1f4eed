#pragma once
#include "views.hpp"

namespace est {

// out = (inp - mean) * rstd * weight + bias per row; mean and rstd are kept for the backward pass.
void layernorm_forward(MatF out, VecF mean, VecF rstd, CMatF inp, CVecF weight, CVecF bias);
// dinp += LayerNorm'(dout) (it accumulates into the residual gradient); dweight and dbias are overwritten.
void layernorm_backward(MatF dinp, VecF dweight, VecF dbias, CMatF dout, CMatF inp, CVecF weight, CVecF mean,
                        CVecF rstd);

}  // namespace est
