#pragma once
#include "views.hpp"

namespace est {

// How a weight is stored: PyTorch's (out, in), or its transpose (in, out).
enum class WeightLayout { out_in, in_out };

// out (N,OC) = alpha * inp (N,C) · W + bias, W (C,OC) stored as weight (OC,C) (out_in) or (C,OC) (in_out);
// bias may be empty (extent 0). alpha is EST's inverted-dropout scale of a sampled sum, applied before the
// bias, which is added once.
void linear_forward(MatF out, CMatF inp, CMatF weight, CVecF bias, float alpha = 1.0f,
                    WeightLayout layout = WeightLayout::out_in);
// dinp = alpha dout · W^T, dweight = alpha times the gradient of W in weight's layout, dbias = column sums of
// dout; all overwritten.
void linear_backward(MatF dinp, MatF dweight, VecF dbias, CMatF dout, CMatF inp, CMatF weight, float alpha = 1.0f,
                     WeightLayout layout = WeightLayout::out_in);

// out[i,:] += bias
void bias_add_forward(MatF out, CVecF bias);
// dbias = sum over rows of dout
void bias_add_backward(VecF dbias, CMatF dout);

}  // namespace est
