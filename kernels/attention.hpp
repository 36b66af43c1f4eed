#pragma once
#include "views.hpp"

namespace est {

// Causal multi-head self-attention core for NH heads of size hs = C/NH.
// qkv (B*T, 3C) holds q, k, v side by side; head h owns columns [h*hs, (h+1)*hs) of each.
// att (B*NH*T, T) keeps the softmax probabilities for the backward pass; atty (B*T, C) is the output.
void attention_forward(MatF atty, MatF att, CMatF qkv, int B, int T, int NH);
// dqkv (B*T, 3C) is overwritten; datt (B*NH*T, T) is scratch.
void attention_backward(MatF dqkv, MatF datt, CMatF datty, CMatF att, CMatF qkv, int B, int T, int NH);

// Row r of att is query position t = r % T: softmax over columns 0..t in place, columns > t set to 0.
void softmax_causal_forward(MatF att, int T);
// datt = att * (datt - <att, datt>) * scale in place, row by row.
void softmax_causal_backward(MatF datt, CMatF att, int T, float scale);

}  // namespace est
