#pragma once
#include "views.hpp"

namespace est {

// Softmax cross-entropy over the first V of the Vp (padded) columns of logits (N, Vp).
// Returns the summed loss over the N rows.
double crossentropy_forward(CMatF logits, CVecI targets, int V);
// Same sum, and overwrites logits with dlogits = (softmax - onehot(target)) * dloss; padded columns get 0.
double crossentropy_forward_backward(MatF logits, CVecI targets, int V, float dloss);

}  // namespace est
