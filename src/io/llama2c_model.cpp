#include "io/llama2c_model.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <stdexcept>

#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "io/model_file.hpp"
#include "model/llama.hpp"

namespace est {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "llama2.c files are little-endian and are read raw");

enum Field { DIM, HIDDEN_DIM, N_LAYERS, N_HEADS, N_KV_HEADS, VOCAB_SIZE, SEQ_LEN, kFields };
constexpr const char* kFieldNames[kFields] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                                              "n_kv_heads", "vocab_size", "seq_len"};
using Header = std::array<int32_t, kFields>;
constexpr int64_t kHeaderBytes = sizeof(Header);

// What run.c hard-codes.
constexpr float kRunCRopeTheta = 10000.0f, kRunCNormEps = 1e-5f;

std::string str(int64_t v) { return std::to_string(v); }

// Positive everywhere; vocab_size's sign is the tie flag, and its magnitude is padded in an int (pad_vocab).
void check_signs(const std::string& path, const Header& h) {
  for (int f = 0; f < kFields; ++f) {
    if (f == VOCAB_SIZE) continue;
    if (h[f] <= 0) throw InputError(path, kFieldNames[f], "must be positive, got " + str(h[f]));
  }
  if (h[VOCAB_SIZE] == 0 || std::abs(int64_t(h[VOCAB_SIZE])) > INT_MAX - 127)
    throw InputError(path, "vocab_size",
                     "must be non-zero and of magnitude below 2^31 - 127 (negative: an LM head of its own), got " +
                         str(h[VOCAB_SIZE]));
}

ModelShape shape_from(const std::string& path, const Header& h) {
  check_signs(path, h);
  if (h[DIM] % h[N_HEADS] != 0)
    throw InputError(path, "dim", str(h[DIM]) + " is not a multiple of n_heads " + str(h[N_HEADS]));
  if (h[N_HEADS] % h[N_KV_HEADS] != 0)
    throw InputError(path, "n_kv_heads", str(h[N_KV_HEADS]) + " does not divide n_heads " + str(h[N_HEADS]));
  if (h[DIM] / h[N_HEADS] % 2 != 0)
    throw InputError(path, "dim", "the head size dim / n_heads = " + str(h[DIM] / h[N_HEADS]) +
                                      " is odd, and RoPE rotates pairs");
  ModelShape s;
  s.arch = Arch::llama;
  s.n_embd = h[DIM];
  s.mlp_hidden = h[HIDDEN_DIM];
  s.n_layer = h[N_LAYERS];
  s.n_head = h[N_HEADS];
  s.n_kv_head = h[N_KV_HEADS];
  s.vocab_size = std::abs(h[VOCAB_SIZE]);
  s.padded_vocab_size = pad_vocab(s.vocab_size);
  s.tie_embeddings = h[VOCAB_SIZE] > 0;
  s.max_seq_len = h[SEQ_LEN];
  s.rope_theta = kRunCRopeTheta;
  s.norm_eps = kRunCNormEps;
  return s;
}

Header header_for(const ModelShape& s) {
  return {s.n_embd, s.neurons(),  s.n_layer, s.n_head, s.kv_heads(),
          s.tie_embeddings ? s.vocab_size : -s.vocab_size, s.max_seq_len};
}

// The fp32 values after the header, counted in N: first in double, as a garbage header's int64 products could
// overflow.
template <class N>
N file_values(const ModelShape& s) {
  const N C = s.n_embd, L = s.n_layer, V = s.vocab_size, M = s.neurons(), hs = s.head_size();
  const N Q = N(s.n_head) * hs, K = N(s.kv_heads()) * hs;
  const N per_layer = 2 * C + C * (2 * Q + 2 * K) + 3 * M * C;
  return V * C * (s.tie_embeddings ? 1 : 2) + L * per_layer + C + N(s.max_seq_len) * hs;
}

// Where the two RoPE tables start among the values: after the final norm, before an untied LM head.
int64_t rope_tables_offset(const ModelShape& s) {
  const int64_t head = s.tie_embeddings ? 0 : int64_t(s.vocab_size) * s.n_embd;
  return file_values<int64_t>(s) - int64_t(s.max_seq_len) * s.head_size() - head;
}

void check_size(const std::string& path, const ModelShape& s, int64_t actual) {
  const std::string got = ", the file has " + str(actual) + " bytes";
  if (kHeaderBytes + 4 * file_values<double>(s) > 0x1p62)
    throw InputError(path, "size", "the header describes a model of more than 2^62 bytes" + got);
  const int64_t n = file_values<int64_t>(s), expected = kHeaderBytes + 4 * n;
  if (actual != expected)
    throw InputError(path, "size",
                     "expected " + str(expected) + " bytes (28-byte header + " + str(n) + " fp32 values, " +
                         (s.tie_embeddings ? "LM head tied" : "LM head of its own") + ")" + got +
                         (actual < expected ? " (truncated?)" : ""));
}

// Opens `path`, validates its header against the file and leaves `in` at the first value.
ModelShape open_model(const std::string& path, std::ifstream& in) {
  Header h{};
  const int64_t actual = open_model_file(path, in, h.data(), kHeaderBytes);
  const ModelShape s = shape_from(path, h);
  check_size(path, s, actual);
  return s;
}

// The file's shape against the model's, field by field as the header names them.
void check_fits(const std::string& path, const ModelShape& file, const ModelShape& model, int context) {
  if (model.arch != Arch::llama) throw InputError(path, "file", "a llama2.c file holds a Llama, not a GPT-2");
  const Header f = header_for(file), m = header_for(model);
  for (int i = 0; i < kFields; ++i) {
    if (i == SEQ_LEN || f[i] == m[i]) continue;
    std::string message = "the file has " + str(f[i]) + ", the config " + str(m[i]);
    if (i == VOCAB_SIZE && std::abs(f[i]) == std::abs(m[i]))
      message += std::string(" (a negative vocab_size is an LM head of its own: model.tie_embeddings ") +
                 (model.tie_embeddings ? "true" : "false") + ")";
    throw InputError(path, kFieldNames[i], message);
  }
  if (file.max_seq_len < context)
    throw InputError(path, "seq_len",
                     "is " + str(file.max_seq_len) + ", shorter than the model's context of " + str(context));
}

// est's row, within a head of size hs, that is the file's row `file_row` there: run.c pairs rows 2j and 2j + 1,
// est rows j and j + hs/2 (header comment).
int64_t est_row_in_head(int64_t file_row, int64_t hs) {
  return file_row % 2 == 0 ? file_row / 2 : file_row / 2 + hs / 2;
}

// Calls copy(est_offset, file_offset, n) for every run of n values at `est_offset` in est's parameters
// (ParameterLayout(s)) and at `file_offset` among the file's values, in file order; the RoPE tables are skipped.
template <class Copy>
void each_run(const ModelShape& s, const Copy& copy) {
  const ParameterLayout est(s);
  const int64_t L = s.n_layer, C = s.n_embd, V = s.vocab_size, M = s.neurons(), hs = s.head_size();
  const int64_t Q = int64_t(s.n_head) * hs, K = int64_t(s.kv_heads()) * hs, QKV = Q + 2 * K;
  int64_t f = 0;
  const auto whole = [&](int id, int64_t n) {
    copy(est[id].offset, f, n);
    f += n;
  };
  // Rows [first, first + rows) of each layer's qkvw, as run.c orders them within a head.
  const auto rotated = [&](int64_t first, int64_t rows) {
    for (int64_t l = 0; l < L; ++l)
      for (int64_t r = 0; r < rows; ++r, f += C)
        copy(est[L_QKVW].offset + (l * QKV + first + r / hs * hs + est_row_in_head(r % hs, hs)) * C, f, C);
  };
  // Rows [first, first + rows) of each layer's (rows_per_layer, C) tensor `id`.
  const auto rows_of = [&](int id, int64_t rows_per_layer, int64_t first, int64_t rows) {
    for (int64_t l = 0; l < L; ++l, f += rows * C) copy(est[id].offset + (l * rows_per_layer + first) * C, f, rows * C);
  };
  // est keeps an output projection (in, out) = (n_in, C); the file (out, in).
  const auto transposed = [&](int id, int64_t n_in) {
    for (int64_t l = 0; l < L; ++l)
      for (int64_t o = 0; o < C; ++o)
        for (int64_t i = 0; i < n_in; ++i) copy(est[id].offset + (l * n_in + i) * C + o, f++, 1);
  };
  whole(L_WTE, V * C);  // the real vocabulary's rows only
  whole(L_RMS1W, L * C);
  rotated(0, Q);
  rotated(Q, K);
  rows_of(L_QKVW, QKV, Q + K, K);
  transposed(L_ATTPROJW, Q);
  whole(L_RMS2W, L * C);
  rows_of(L_GATEUPW, 2 * M, 0, M);
  transposed(L_DOWNW, M);
  rows_of(L_GATEUPW, 2 * M, M, M);
  whole(L_RMSFW, C);
  f += int64_t(s.max_seq_len) * hs;
  if (!s.tie_embeddings) whole(L_LMHEAD, V * C);
}

// run.c's freq_cis_real and freq_cis_imag: cos and sin of t * theta^(-2j/hs), (seq_len, hs/2) each.
void write_rope_tables(const ModelShape& s, float* out) {
  const int64_t T = s.max_seq_len, half = s.head_size() / 2;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < half; ++j) {
      const double angle = double(t) * std::pow(double(s.rope_theta), -double(j) / double(half));
      out[t * half + j] = float(std::cos(angle));
      out[T * half + t * half + j] = float(std::sin(angle));
    }
}

}  // namespace

ModelShape read_llama2c_header(const std::string& path) {
  std::ifstream in;
  return open_model(path, in);
}

void load_llama2c_model(const std::string& path, Model& model) {
  std::ifstream in;
  const ModelShape file = open_model(path, in);
  check_fits(path, file, model.shape(), model.seq_len());
  // Read into host memory of our own, so a failed read leaves the model intact.
  std::vector<float> values(size_t(file_values<int64_t>(file)));
  if (!in.read(reinterpret_cast<char*>(values.data()), std::streamsize(values.size() * sizeof(float))))
    throw InputError(path, "file", "read of the parameters failed");
  // est's layout (its padding) with the file's seq_len, which places the file's tensors after the RoPE tables.
  ModelShape layout = model.shape();
  layout.max_seq_len = file.max_seq_len;
  Buffer global("llama2c_params", size_t(ParameterLayout(layout).total));
  const auto host = Kokkos::create_mirror_view(global);  // zero-initialised: the padded vocabulary rows stay 0
  each_run(layout, [&](int64_t e, int64_t f, int64_t n) { std::copy_n(values.data() + f, n, host.data() + e); });
  Kokkos::deep_copy(global, host);
  model.import_params(global);
}

void save_llama2c_model(const std::string& path, const ModelShape& shape, const std::vector<float>& params) {
  if (shape.arch != Arch::llama) throw std::invalid_argument("llama2.c files hold Llama models");
  if (int64_t(params.size()) != ParameterLayout(shape).total)
    throw std::invalid_argument("save_llama2c_model: " + str(int64_t(params.size())) +
                                " parameters for a shape of " + str(ParameterLayout(shape).total));
  std::vector<float> values(size_t(file_values<int64_t>(shape)));
  each_run(shape, [&](int64_t e, int64_t f, int64_t n) { std::copy_n(params.data() + e, n, values.data() + f); });
  write_rope_tables(shape, values.data() + rope_tables_offset(shape));
  const Header h = header_for(shape);
  write_file_atomic(path, [&](int fd) {
    return write_all(fd, h.data(), sizeof(Header)) && write_all(fd, values.data(), values.size() * sizeof(float));
  });
}

}  // namespace est
