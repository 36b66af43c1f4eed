#include "train/sample.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <vector>

#include "data/byte_tokenizer.hpp"
#include "input_error.hpp"
#include "io/llama2c_model.hpp"
#include "io/llmc_model.hpp"
#include "io/llmc_tokenizer.hpp"
#include "io/npy_file.hpp"
#include "model/architectures.hpp"
#include "random_stream.hpp"

namespace est {
namespace {

constexpr uint32_t kSamplingPurpose = 1;

bool byte_level(const ModelShape& s) { return s.vocab_size == kByteVocabSize; }

void check_request(const SampleRequest& r) {
  if (r.tokens < 0) throw InputError("", "--tokens", "must be >= 0");
  if (!std::isfinite(r.temperature) || r.temperature < 0)
    throw InputError("", "--temperature", "must be a finite number >= 0 (0: the most likely token)");
}

std::vector<int> prompt_tokens(const std::string& prompt, const ModelShape& s) {
  std::vector<int> tokens;
  if (byte_level(s)) {
    for (uint16_t t : encode_bytes(prompt)) tokens.push_back(t);
  } else {
    std::istringstream words(prompt);
    for (std::string w; words >> w;) {
      char* end = nullptr;
      errno = 0;
      const long id = std::strtol(w.c_str(), &end, 10);
      if (*end != '\0' || errno == ERANGE)
        throw InputError("", "--prompt",
                         "'" + w + "' is not a token id; the model's vocabulary of " + std::to_string(s.vocab_size) +
                             " is not byte-level, so the prompt is token ids separated by spaces");
      if (id < 0 || id >= s.vocab_size)
        throw InputError("", "--prompt",
                         "token " + w + " is outside the model's vocabulary [0, " + std::to_string(s.vocab_size) + ")");
      tokens.push_back(int(id));
    }
  }
  if (tokens.empty()) throw InputError("", "--prompt", "is empty: the model needs at least one token to continue");
  return tokens;
}

// A file without llm.c's magic is read as llama2.c's, whose header has no magic of its own: an error says so.
ModelShape model_file_shape(const std::string& path) {
  if (has_llmc_magic(path)) return read_llmc_header(path);
  try {
    return read_llama2c_header(path);
  } catch (const InputError& e) {
    if (e.key() == "file") throw;
    const std::string message = std::string(e.what()).substr(std::string(InputError(path, e.key(), "").what()).size());
    throw InputError(path, e.key(), message + " (read as a llama2.c model file, as it lacks llm.c's magic 20240326)");
  }
}

std::unique_ptr<Model> load_model(const std::string& path, const ModelShape& shape, int T) {
  std::unique_ptr<Model> m = make_model(shape, 1, T);
  if (shape.arch == Arch::gpt2)
    load_llmc_model(path, *m);
  else
    load_llama2c_model(path, *m);
  return m;
}

// How tokens are shown: their bytes (a byte-level model, or a tokenizer file), else their ids.
class TokenWriter {
 public:
  TokenWriter(const SampleRequest& r, const ModelShape& s, std::FILE* out) : out_(out), bytes_(byte_level(s)) {
    if (r.tokenizer.empty()) return;
    table_ = read_llmc_tokenizer(r.tokenizer);
    if (int64_t(table_.size()) != s.vocab_size)
      throw InputError(r.tokenizer, "vocab_size",
                       "the tokenizer has " + std::to_string(table_.size()) + " tokens, the model " +
                           std::to_string(s.vocab_size));
  }
  void write(int token) {
    if (!table_.empty())
      std::fwrite(table_[token].data(), 1, table_[token].size(), out_);
    else if (bytes_)
      std::fputc(token, out_);
    else
      std::fprintf(out_, first_ ? "%d" : " %d", token);
    first_ = false;
    std::fflush(out_);
  }

 private:
  std::FILE* out_;
  bool bytes_, first_ = true;
  std::vector<std::string> table_;
};

// The real vocabulary's logits (row-major) at positions [first, n) of a window of n tokens. Positions past n
// are padding, which causal attention keeps from the ones before.
std::vector<float> logits_of(Model& m, const std::vector<int>& window, int first) {
  const int T = m.seq_len(), n = int(window.size());
  const int64_t V = m.shape().vocab_size, Vp = m.shape().padded_vocab_size;
  std::vector<int> tokens(T, 0), targets(T, 0);
  std::copy(window.begin(), window.end(), tokens.begin());
  m.set_batch(tokens.data(), targets.data(), 1);
  m.forward();
  Kokkos::View<float**, Kokkos::LayoutRight, Kokkos::HostSpace> rows("logits", n - first, Vp);
  Kokkos::deep_copy(rows, Kokkos::subview(m.logits(), std::make_pair(int64_t(first), int64_t(n)), Kokkos::ALL));
  std::vector<float> z;
  for (int i = 0; i < n - first; ++i) z.insert(z.end(), &rows(i, 0), &rows(i, 0) + V);
  return z;
}

// The argmax at temperature 0, else a draw from softmax(z / temperature).
int pick(const std::vector<float>& z, double temperature, RandomStream& random) {
  const int best = int(std::max_element(z.begin(), z.end()) - z.begin());
  if (temperature == 0) return best;
  std::vector<double> p(z.size());
  double sum = 0;
  for (size_t v = 0; v < z.size(); ++v) sum += p[v] = std::exp((double(z[v]) - z[best]) / temperature);
  const double u = random.uniform() * sum;
  double below = 0;
  for (size_t v = 0; v < z.size(); ++v)
    if (u <= (below += p[v])) return int(v);
  return best;  // u past the last partial sum by rounding
}

}  // namespace

void run_sample(const SampleRequest& r, std::FILE* out) {
  check_request(r);
  const ModelShape shape = model_file_shape(r.model);
  std::vector<int> sequence = prompt_tokens(r.prompt, shape);
  TokenWriter writer(r, shape, out);
  const int T = int(std::min<int64_t>(int64_t(sequence.size()) + r.tokens, shape.max_seq_len));
  const std::unique_ptr<Model> model = load_model(r.model, shape, T);
  const auto window = [&] {
    return std::vector<int>(sequence.end() - std::min<int64_t>(int64_t(sequence.size()), T), sequence.end());
  };
  if (!r.logits.empty()) {
    const std::vector<int> w = window();
    write_npy(r.logits, logits_of(*model, w, 0).data(), int64_t(w.size()), shape.vocab_size);
  }
  for (int t : sequence) writer.write(t);
  RandomStream random(r.seed, 0, kSamplingPurpose, 0);
  for (int i = 0; i < r.tokens; ++i) {
    const std::vector<int> w = window();
    sequence.push_back(pick(logits_of(*model, w, int(w.size()) - 1), r.temperature, random));
    writer.write(sequence.back());
  }
  std::fputc('\n', out);
}

}  // namespace est
