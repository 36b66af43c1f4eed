#pragma once
#include "views.hpp"

namespace est {

// h (N, 2M) holds [gate | up] side by side; out (N, M) = silu(gate) * up.
void swiglu_forward(MatF out, CMatF h);
// dh (N, 2M) = the gradient with respect to h, from dout (N, M); overwritten.
void swiglu_backward(MatF dh, CMatF dout, CMatF h);

}  // namespace est
