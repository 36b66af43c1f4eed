#pragma once
#include "views.hpp"

namespace est {

// GPT-2's tanh approximation: out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). out may alias inp.
void gelu_forward(MatF out, CMatF inp);
// dinp = gelu'(inp) * dout. dinp may alias dout.
void gelu_backward(MatF dinp, CMatF inp, CMatF dout);

}  // namespace est
