#pragma once
#include "views.hpp"

namespace est {

// out (N,OC) = inp (N,C) · weight (OC,C)^T + bias; bias may be empty (extent 0).
void linear_forward(MatF out, CMatF inp, CMatF weight, CVecF bias);
// dinp = dout · weight, dweight = dout^T · inp, dbias = column sums of dout; all three are overwritten.
void linear_backward(MatF dinp, MatF dweight, VecF dbias, CMatF dout, CMatF inp, CMatF weight);

// out[i,:] += bias
void bias_add_forward(MatF out, CVecF bias);
// dbias = sum over rows of dout
void bias_add_backward(VecF dbias, CMatF dout);

}  // namespace est
