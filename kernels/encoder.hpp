#pragma once
#include "views.hpp"

namespace est {

// out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]; tokens is (B*T), out is (B*T, C).
void encoder_forward(MatF out, CVecI tokens, CMatF wte, CMatF wpe, int T);
// dwte[tokens[i],:] += dout[i,:] (in token order, so the sum is deterministic); dwpe[t,:] = sum_b dout[b,t,:]
// for t < T and 0 for the rest of the max_seq_len rows.
void encoder_backward(MatF dwte, MatF dwpe, CMatF dout, CVecI tokens, int T);

// Token embedding alone, without positions (Llama's positions are rotations inside attention, rope.hpp).
// out[i,:] = wte[tokens[i],:].
void embedding_forward(MatF out, CVecI tokens, CMatF wte);
// dwte[tokens[i],:] += dout[i,:], in token order (deterministic).
void embedding_backward(MatF dwte, CMatF dout, CVecI tokens);

}  // namespace est
