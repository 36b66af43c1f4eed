#include "train/bench.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <random>

#include "gemm.hpp"
#include "model/gpt2.hpp"
#include "optim/optimizer.hpp"
#include "train/flops.hpp"
#include "train/runtime.hpp"
#include "train/step.hpp"

namespace est {

namespace {

using Clock = std::chrono::steady_clock;

struct GemmShape {
  int64_t M, N, K;
  double flops() const { return 2.0 * M * N * K; }
};

// The model's GEMMs as (tokens x out x in); the largest by FLOPs is the one the backend is measured at.
GemmShape largest_gemm(const ModelShape& s, int64_t BT) {
  const int64_t C = s.n_embd;
  const std::array<GemmShape, 5> shapes = {{{BT, 3 * C, C}, {BT, C, C}, {BT, 4 * C, C}, {BT, C, 4 * C},
                                            {BT, s.padded_vocab_size, C}}};
  return *std::max_element(shapes.begin(), shapes.end(),
                           [](const GemmShape& a, const GemmShape& b) { return a.flops() < b.flops(); });
}

// Times C = A·B^T at one GEMM shape (the layout of a linear layer's forward).
class GemmProbe {
 public:
  explicit GemmProbe(const GemmShape& g) : g_(g), A_("bench_A", g.M * g.K), B_("bench_B", g.N * g.K), C_("bench_C", g.M * g.N) {
    Kokkos::deep_copy(A_, 0.01f);
    Kokkos::deep_copy(B_, 0.02f);
    run();
  }
  // GFLOP/s over at least `seconds` (and 2 products).
  double gflops(double seconds) {
    int reps = 0;
    const auto t0 = Clock::now();
    double elapsed = 0.0;
    do {
      run();
      ++reps;
      elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (elapsed < seconds || reps < 2);
    return g_.flops() * reps / elapsed / 1e9;
  }

 private:
  void run() {
    gemm::sgemm(gemm::Op::N, gemm::Op::T, g_.M, g_.N, g_.K, 1.0f, A_.data(), g_.K, B_.data(), g_.K, 0.0f,
                C_.data(), g_.N);
    Kokkos::fence();
  }
  GemmShape g_;
  Buffer A_, B_, C_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // ru_maxrss is KiB on Linux
}

}  // namespace

nlohmann::json run_bench(const Config& cfg, int steps) {
  const int threads = configure_runtime(cfg.runtime);
  const ModelShape shape = cfg.shape();
  const int B = cfg.train.batch_size, T = cfg.model.seq_len;
  const int64_t BT = int64_t(B) * T;
  GPT2 model(shape, B, T);
  model.init_random(cfg.init_seed());
  const auto& t = cfg.train;
  AdamW optimizer(model.layout(), AdamWConfig{float(t.beta1), float(t.beta2), float(t.eps), float(t.weight_decay),
                                              t.decay_embeddings});
  std::mt19937 rng(static_cast<uint32_t>(t.seed));
  std::uniform_int_distribution<int> token(0, shape.vocab_size - 1);
  std::vector<int> inputs(BT), targets(BT);
  for (int64_t i = 0; i < BT; ++i) {
    inputs[i] = token(rng);
    targets[i] = token(rng);
  }
  model.set_batch(inputs.data(), targets.data());

  // The machine is shared and noisy: each timed step is followed by a GEMM measurement of similar length,
  // so drifts in available CPU hit both, and the medians are compared.
  const GemmShape g = largest_gemm(shape, BT);
  GemmProbe probe(g);
  constexpr int kWarmup = 2;
  std::vector<double> times, rates;
  for (int i = 0; i < kWarmup + steps; ++i) {
    const auto t0 = Clock::now();
    train_step(model, optimizer, float(t.lr), t.grad_clip);
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (i < kWarmup) continue;
    times.push_back(dt);
    rates.push_back(probe.gflops(dt));
  }
  const double step_seconds = median(times);
  const double flops_per_step = training_flops_per_token(shape, T) * BT;
  const double gemm_gflops = median(rates);
  const double achieved = flops_per_step / step_seconds / 1e9;

  nlohmann::json j;
  j["config"] = cfg.path;
  j["shape"] = {{"n_layer", shape.n_layer}, {"n_head", shape.n_head}, {"n_embd", shape.n_embd},
                {"seq_len", T},             {"batch_size", B},        {"vocab_size", shape.vocab_size},
                {"padded_vocab_size", shape.padded_vocab_size},       {"parameters", model.layout().total}};
  j["steps"] = steps;
  j["threads"] = threads;
  j["gemm_backend"] = gemm::backend_name(gemm::current_backend());
  j["step_seconds"] = step_seconds;
  j["step_seconds_min"] = *std::min_element(times.begin(), times.end());
  j["tokens_per_second"] = BT / step_seconds;
  j["flops_per_step"] = flops_per_step;
  j["flops_formula"] = kFlopsFormula;
  j["achieved_gflops"] = achieved;
  j["gemm_shape"] = {g.M, g.N, g.K};
  j["gemm_gflops"] = gemm_gflops;
  j["gemm_fraction"] = achieved / gemm_gflops;
  j["peak_rss_mib"] = peak_rss_mib();
  return j;
}

}  // namespace est
