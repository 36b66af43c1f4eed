#pragma once
#include "views.hpp"

namespace est {

// Rotary position embedding, rotate-half pairing (GPT-NeoX, Hugging Face Llama): within a head of size hs,
// element i < hs/2 pairs with element i + hs/2 and turns by the angle t * theta^(-2i/hs) at position t:
// (x_i, x_{i+hs/2}) -> (x_i cos - x_{i+hs/2} sin, x_{i+hs/2} cos + x_i sin).

// cos and sin (T, hs/2) of the angles t * theta^(-2i/hs) for positions t < T (computed in double, stored as float).
void rope_tables(MatF cos, MatF sin, double theta);
// Rotates heads [0, n_heads) of x in place: head h is columns [h*hs, (h+1)*hs) of each row, the row's position
// is row % T with T = cos.extent(0). x may be wider than n_heads*hs (the rest is untouched).
void rope_forward(MatF x, int n_heads, int hs, CMatF cos, CMatF sin);
// The transpose of rope_forward (the inverse rotation), in place on the gradient.
void rope_backward(MatF dx, int n_heads, int hs, CMatF cos, CMatF sin);

}  // namespace est
