#pragma once
// Helpers for kernel tests: deterministic random data and host<->device copies of flat buffers.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/shape.hpp"
#include "views.hpp"

namespace est::test {

// A fresh directory under the system's temporary directory, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    std::string name = (std::filesystem::temp_directory_path() / "est_test_XXXXXX").string();
    if (!::mkdtemp(name.data())) throw std::runtime_error("mkdtemp failed");
    path_ = name;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A GPT-2 shape small enough for exhaustive tests; the vocabulary is its own padding.
inline ModelShape small_shape(int layers, int heads, int embd, int vocab = 128, int max_seq_len = 8) {
  ModelShape s;
  s.max_seq_len = max_seq_len;
  s.vocab_size = s.padded_vocab_size = vocab;
  s.n_layer = layers;
  s.n_head = heads;
  s.n_embd = embd;
  return s;
}

inline std::vector<float> randn(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline Buffer to_device(const std::vector<float>& h) {
  Buffer d("test", h.size());
  Kokkos::View<const float*, Kokkos::HostSpace, Unmanaged> hv(h.data(), h.size());
  Kokkos::deep_copy(d, hv);
  return d;
}

inline Kokkos::View<int*, MemSpace> to_device(const std::vector<int>& h) {
  Kokkos::View<int*, MemSpace> d("test_int", h.size());
  Kokkos::View<const int*, Kokkos::HostSpace, Unmanaged> hv(h.data(), h.size());
  Kokkos::deep_copy(d, hv);
  return d;
}

// Any contiguous view (a flat buffer, a matrix) as a flat host vector.
template <class View>
std::vector<float> to_host(const View& d) {
  std::vector<float> h(d.size());
  Kokkos::View<float*, Kokkos::HostSpace, Unmanaged> hv(h.data(), h.size());
  Kokkos::deep_copy(hv, CVecF(d.data(), d.size()));
  return h;
}

// Max |a-b| / (atol + rtol*|b|) must stay <= 1.
inline void expect_close(const std::vector<float>& got, const std::vector<double>& want, double atol, double rtol,
                         const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double r = std::abs(got[i] - want[i]) / (atol + rtol * std::abs(want[i]));
    if (r > worst) { worst = r; at = i; }
  }
  EXPECT_LE(worst, 1.0) << what << ": index " << at << " got " << got[at] << " want " << want[at];
}

inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

}  // namespace est::test
