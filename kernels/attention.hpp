#pragma once
#include <vector>

#include "views.hpp"

namespace est {

// Which key/value head each query head reads (grouped-query attention); multi-head attention is q == kv.
struct AttentionHeads {
  int q = 0, kv = 0;
  std::vector<int> kv_of;  // per query head, in [0, kv), non-decreasing
  static AttentionHeads multi_head(int n);       // kv_of[h] = h
  static AttentionHeads grouped(int q, int kv);  // kv_of[h] = h / (q / kv); q a multiple of kv
};

// The head size hs = y_cols / heads.q, checked against qkv's (q + 2 kv) heads, with the kv_of map: an
// std::invalid_argument when they do not fit.
int64_t checked_head_size(const AttentionHeads& heads, int64_t y_cols, int64_t qkv_cols);

// Causal attention with heads.q query heads over heads.kv key/value heads, head size hs = atty.extent(1) / heads.q.
// qkv (B*T, (q + 2 kv) * hs): q heads, then kv k heads, then kv v heads. att (B*q*T, T) keeps the softmax
// probabilities; atty (B*T, q*hs) is the output.
// Within each part of a qkv row head h owns columns [h*hs, (h+1)*hs): query head h at h*hs, key head g at
// (q + g)*hs, value head g at (q + kv + g)*hs; atty's head h likewise at h*hs. Row b*q*T + h*T + t of att is
// query head h of sequence b at position t.
void attention_forward(MatF atty, MatF att, CMatF qkv, int B, int T, const AttentionHeads& heads);
// dqkv (B*T, (q + 2 kv) * hs) is overwritten (dk, dv summed over the query heads sharing a kv head); datt scratch.
// A kv head no query head reads gets dk = dv = 0.
void attention_backward(MatF dqkv, MatF datt, CMatF datty, CMatF att, CMatF qkv, int B, int T,
                        const AttentionHeads& heads);

// Multi-head attention (GPT-2) for NH heads of size hs = C/NH: qkv (B*T, 3C) holds q, k, v side by side.
// att (B*NH*T, T); atty (B*T, C).
void attention_forward(MatF atty, MatF att, CMatF qkv, int B, int T, int NH);
// dqkv (B*T, 3C) is overwritten; datt (B*NH*T, T) is scratch.
void attention_backward(MatF dqkv, MatF datt, CMatF datty, CMatF att, CMatF qkv, int B, int T, int NH);

// Row r of att is query position t = r % T: softmax over columns 0..t in place, columns > t set to 0.
void softmax_causal_forward(MatF att, int T);
// datt = att * (datt - <att, datt>) * scale in place, row by row.
void softmax_causal_backward(MatF datt, CMatF att, int T, float scale);

}  // namespace est
