#pragma once
// llama2.c model files (Karpathy's run.c, the legacy fp32 "version 0" export): a header of 7 little-endian int32
// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len), a negative vocab_size marking an LM
// head of its own, then fp32 tensors with every matrix (out, in) and the vocabulary unpadded:
//   token_embedding (V, C); rms_att (L, C); wq (L, Q, C); wk (L, K, C); wv (L, K, C); wo (L, C, Q);
//   rms_ffn (L, C); w1 = gate (L, M, C); w2 = down (L, C, M); w3 = up (L, M, C); rms_final (C);
//   freq_cis_real, freq_cis_imag (seq_len, hs/2) each; and, only when untied, wcls (V, C).
// with Q = n_heads * hs, K = n_kv_heads * hs. run.c skips the two RoPE tables; est skips them on reading and
// writes the cos and sin of its own angles, so the file has the size run.c expects.
//
// RoPE pairing: run.c rotates the interleaved pairs (2j, 2j+1) of a head by t * 10000^(-2j/hs); est rotates
// (j, j + hs/2) by the same angle (kernels/rope.hpp). The two are one model up to a permutation of each head's
// query and key rows: est's row j < hs/2 of a head is the file's row 2j, est's row j + hs/2 the file's 2j + 1.
// q·k is a sum over a head's dimensions, so permuting q and k alike leaves attention unchanged; v and wo's
// inputs are not rotated and keep their order.
//
// The file has no rope_theta or norm_eps. run.c uses 10000 and 1e-5; est reads a file with the config's values
// (read_llama2c_header reports run.c's), and writes a model with another RoPE base all the same: run.c would
// then compute a different model, which is the user's choice to make.
#include <string>
#include <vector>

#include "model/model.hpp"
#include "model/shape.hpp"

namespace est {

// The Llama shape in the header of `path` (padded vocabulary, run.c's RoPE base and norm epsilon), after
// checking the header's values and that the file holds exactly the tensors they imply. Throws InputError
// naming the field.
ModelShape read_llama2c_header(const std::string& path);

// Loads `path` into `model` (this rank's share), whose shape must be the file's and whose context
// (model.seq_len()) must fit in the file's seq_len; padded vocabulary rows become zero.
void load_llama2c_model(const std::string& path, Model& model);

// Writes the unsplit model's parameters (Model::gather_params order) to `path` through path + ".tmp", so
// `path` is either the old file or the complete new one. shape.max_seq_len is the file's seq_len.
void save_llama2c_model(const std::string& path, const ModelShape& shape, const std::vector<float>& params);

}  // namespace est
