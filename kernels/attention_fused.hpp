#pragma once
// Fused causal attention (FlashAttention-2): the forward pass runs an online softmax over blocks of keys and keeps
// only the output and each row's log-sum-exp; the backward pass recomputes the probabilities block by block from
// q, k and the log-sum-exp. Memory per layer is B*q*T floats instead of the B*q*T*T of the softmax maps.
//
// Layouts and head semantics are attention.hpp's: qkv (B*T, (q + 2 kv) * hs), atty (B*T, q*hs), grouped-query
// heads through AttentionHeads::kv_of. Statistics are indexed by row (b*q + h)*T + t. Results are reproducible:
// every sum runs in a fixed order, without atomics.
#include "attention.hpp"
#include "views.hpp"

namespace est {

// Head sizes up to this fit the kernels' tiles in a GPU block's shared memory.
constexpr int kFusedAttentionMaxHeadSize = 256;

// atty (B*T, q*hs) and lse (B*q*T), the log-sum-exp of each query row's scaled scores.
void attention_fused_forward(MatF atty, VecF lse, CMatF qkv, int B, int T, const AttentionHeads& heads);
// dqkv (B*T, (q + 2 kv) * hs) is overwritten (dk, dv summed over the query heads of each kv head; zero for a kv
// head no query head reads); rowdot (B*q*T) is scratch.
void attention_fused_backward(MatF dqkv, VecF rowdot, CMatF datty, CMatF atty, CVecF lse, CMatF qkv, int B, int T,
                              const AttentionHeads& heads);

}  // namespace est
