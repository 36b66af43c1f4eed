#include "train/bench.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <random>

#include "est/flops.hpp"
#include "input_error.hpp"
#include "parallel/process_grid.hpp"
#include "est/sampler.hpp"
#include "gemm.hpp"
#include "model/architectures.hpp"
#include "optim/optimizer.hpp"
#include "train/free_memory.hpp"
#include "train/memory_plan.hpp"
#include "train/runtime.hpp"
#include "train/step.hpp"
#include "train/timing.hpp"
#include "train/trainer.hpp"

namespace est {

namespace {

struct GemmShape {
  int64_t M, N, K;
  double flops() const { return 2.0 * M * N * K; }
};

// The model's GEMMs as (tokens x out x in); the largest by FLOPs is the one the backend is measured at.
GemmShape largest_gemm(const ModelShape& s, int64_t BT) {
  const int64_t C = s.n_embd, K = int64_t(s.kv_heads()) * s.head_size(), M = s.neurons();
  const int64_t fc_out = s.arch == Arch::llama ? 2 * M : M;  // Llama's gate and up are one GEMM
  const std::array<GemmShape, 5> shapes = {{{BT, C + 2 * K, C}, {BT, C, C}, {BT, fc_out, C}, {BT, C, M},
                                            {BT, s.padded_vocab_size, C}}};
  return *std::max_element(shapes.begin(), shapes.end(),
                           [](const GemmShape& a, const GemmShape& b) { return a.flops() < b.flops(); });
}

// Times C = A·B^T at one GEMM shape (the layout of a linear layer's forward).
class GemmProbe {
 public:
  explicit GemmProbe(const GemmShape& g)
      : g_(g), A_("bench_A", g.M * g.K), B_("bench_B", g.N * g.K), C_("bench_C", g.M * g.N) {
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
      elapsed = seconds_since(t0);
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

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // ru_maxrss is KiB on Linux
}

// The training plan of this rank's share, without the outputs bench does not write, and with the GEMM probe.
MemoryPlan bench_plan(const Config& cfg, const ModelShape& shape, int tp, int dp, int B, const GemmShape& g) {
  MemoryPlan plan = plan_memory(cfg, shape, RankLayout{tp, dp, B}, false);
  const int64_t probe = (g.M * g.K + g.N * g.K + g.M * g.N) * int64_t(sizeof(float));
  plan.items.insert(plan.items.end() - 1, MemoryItem{"GEMM probe (bench)", probe, true, {}, false, ""});
  return plan;
}

// llm.c's training FLOPs per token (train_gpt2.cu gpt2_estimate_mfu): 6N + 6·L·C·T, N the parameters. An untied
// embedding (Llama's) is a table lookup, not a GEMM, so it is left out of N.
double llmc_flops_per_token(const ModelShape& s, int T) {
  const double lookup = s.tie_embeddings ? 0.0 : double(s.padded_vocab_size) * s.n_embd;
  return 6.0 * (double(ParameterLayout(s).total) - lookup) + 6.0 * s.n_layer * s.n_embd * double(T);
}

struct Timed {
  StageSpec spec;
  int stage;     // 1-based in the schedule; 0 for the full-model reference the schedule lacks
  bool overlap;  // the gradient's data-parallel sum overlapped with the backward pass
  std::vector<double> seconds, dp_reduce, dp_exposed;
  double flops = 0, flops_full = 0;
  double grad_bytes = 0, tp_bytes = 0;  // per step, this rank
};

// With several replicas, each stage's step with the gradient sum overlapped and blocking, side by side.
nlohmann::json data_parallel_table(const std::vector<Timed>& runs, int64_t tokens, bool overlap_available) {
  nlohmann::json stages = nlohmann::json::array();
  for (const Timed& run : runs) {
    if (!run.overlap) continue;
    const Timed& blocking =
        *std::find_if(runs.begin(), runs.end(), [&](const Timed& t) { return !t.overlap && t.stage == run.stage; });
    nlohmann::json row = {{"stage", run.stage}};
    for (const Timed* t : {&run, &blocking}) {
      const double step = median(t->seconds);
      row[t->overlap ? "overlapped" : "blocking"] = {{"step_seconds", step},
                                                     {"tokens_per_second", tokens / step},
                                                     {"dp_reduce_seconds", median(t->dp_reduce)},
                                                     {"dp_exposed_seconds", median(t->dp_exposed)}};
    }
    row["step_ratio"] = median(run.seconds) / median(blocking.seconds);
    stages.push_back(row);
  }
  return {{"overlap_available", overlap_available}, {"stages", stages}};
}

}  // namespace

nlohmann::json run_bench(const Config& cfg, int steps) {
  const int threads = configure_runtime(cfg);
  const ModelShape shape = cfg.shape();
  ProcessGrid grid(MPI_COMM_WORLD, cfg.parallel.tp);
  const int G = cfg.train.batch_size, T = cfg.model.seq_len, dp = grid.dp_size(), r = grid.dp_rank();
  if (G < dp) throw InputError(cfg.path, "train.batch_size", "the global batch is smaller than the data-parallel ranks");
  // Even shares of the global batch (the balancer's business is training runs).
  const int B = G / dp + (r < G % dp), first = r * (G / dp) + std::min(r, G % dp);
  const int64_t BT = int64_t(B) * T, tokens = int64_t(G) * T;
  const Schedule schedule = schedule_for(cfg, shape);
  const MemoryPlan plan = bench_plan(cfg, shape, grid.tp_size(), dp, B, largest_gemm(shape, BT));
  require_fits(plan, grid.world_mpi());
  const SubnetworkSampler sampler = sampler_for(cfg, shape);
  const std::unique_ptr<Model> owned =
      make_model(shape, B, T, TensorParallel{{grid.tp_rank(), grid.tp_size()}, &grid.tp()}, cfg.attention());
  Model& model = *owned;
  model.init_random(cfg.init_seed());
  AdamW optimizer(model.layout(), adamw_config(cfg));

  // The same global batch on every rank; each takes its sequences.
  std::mt19937 rng(static_cast<uint32_t>(cfg.train.seed));
  std::uniform_int_distribution<int> token(0, shape.vocab_size - 1);
  std::vector<int> inputs(tokens), targets(tokens);
  for (int64_t i = 0; i < tokens; ++i) {
    inputs[i] = token(rng);
    targets[i] = token(rng);
  }
  model.set_batch(inputs.data() + int64_t(first) * T, targets.data() + int64_t(first) * T, B);

  // Every stage with the config's gradient sum, and with several replicas the other way too.
  const bool overlap = cfg.parallel.overlap;
  std::vector<StageSpec> specs = schedule.stages;
  std::vector<int> numbers(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) numbers[i] = int(i) + 1;
  if (std::none_of(specs.begin(), specs.end(), [](const StageSpec& s) { return s.is_full(); })) {
    specs.push_back(StageSpec{});
    numbers.push_back(0);
  }
  std::vector<Timed> runs;
  for (const bool o : dp > 1 ? std::vector<bool>{overlap, !overlap} : std::vector<bool>{overlap})
    for (size_t i = 0; i < specs.size(); ++i) runs.push_back({specs[i], numbers[i], o, {}, {}, {}});
  Timed& reference = *std::find_if(runs.begin(), runs.end(),
                                   [&](const Timed& t) { return t.spec.is_full() && t.overlap == overlap; });
  const GradientReduction reduction{cfg.parallel.bucket_mb, overlap};

  GemmProbe probe(largest_gemm(shape, BT));
  std::vector<double> rates;
  constexpr int kWarmup = 1;
  for (int round = 0; round < kWarmup + steps; ++round) {
    for (Timed& run : runs) {
      const Subnetwork sub = sampler.sample(run.spec, round);
      model.set_subnetwork(sub.local_part(grid.tp_rank(), grid.tp_size(), shape.n_head, shape.neurons()));
      const int64_t tp_bytes = grid.tp().stats().bytes;
      const auto t0 = Clock::now();
      const StepStats st = train_step(model, optimizer, float(cfg.train.lr), cfg.train.grad_clip,
                                      StepContext{&grid, tokens, 1.0, {reduction.bucket_mb, run.overlap}});
      const double dt = seconds_since(t0);
      if (round < kWarmup) continue;
      const StepFlops f = step_flops(shape, T, tokens, sub);
      run.seconds.push_back(dt);
      run.dp_reduce.push_back(st.dp_reduce_seconds);
      run.dp_exposed.push_back(st.dp_exposed_seconds);
      run.flops += f.executed / steps;
      run.flops_full += f.full / steps;
      run.grad_bytes += double(st.grad_bytes) / steps;
      run.tp_bytes += double(grid.tp().stats().bytes - tp_bytes) / steps;
    }
    if (round >= kWarmup) rates.push_back(probe.gflops(reference.seconds.back()));
  }

  const double t_full = median(reference.seconds);
  // This rank's share of the model and of the tokens, against this rank's GEMM rate.
  const double achieved = llmc_flops_per_token(shape, T) * BT / grid.tp_size() / t_full / 1e9;
  const double gemm_gflops = median(rates);
  nlohmann::json stages = nlohmann::json::array();
  for (const Timed& run : runs) {
    if (run.overlap != overlap) continue;
    const double t = median(run.seconds);
    stages.push_back({{"stage", run.stage},
                      {"p_heads", run.spec.p_heads},
                      {"p_mlp", run.spec.p_mlp},
                      {"p_layers", run.spec.p_layers},
                      {"step_seconds", t},
                      {"flops_per_step", run.flops},
                      {"flops_ratio", run.flops / run.flops_full},
                      {"time_ratio", t / t_full},
                      {"time_minus_flops_ratio", t / t_full - run.flops / run.flops_full},
                      {"dp_gradient_bytes_per_step", run.grad_bytes},
                      {"tp_bytes_per_step", run.tp_bytes}});
  }

  nlohmann::json j;
  j["config"] = cfg.path;
  j["schedule"] = cfg.est.schedule;
  j["shape"] = {{"arch", arch_name(shape.arch)}, {"n_kv_head", shape.kv_heads()}, {"mlp_hidden", shape.neurons()},
                {"n_layer", shape.n_layer}, {"n_head", shape.n_head}, {"n_embd", shape.n_embd},
                {"seq_len", T},             {"batch_size", B},        {"vocab_size", shape.vocab_size},
                {"padded_vocab_size", shape.padded_vocab_size},       {"parameters", model.layout().total}};
  j["steps"] = steps;
  j["grid"] = {{"ranks", grid.world_size()}, {"tp", grid.tp_size()}, {"dp", dp}};
  j["threads"] = threads;
  j["kokkos"] = kokkos_description();
  j["gemm_backend"] = gemm::backend_name(gemm::current_backend());
  j["precision"] = gemm::precision_name(gemm::current_precision());
  j["attention"] = attention_kind_name(model.attention());
  j["step_seconds"] = t_full;
  j["tokens_per_second"] = tokens / t_full;
  j["flops_per_step"] = reference.flops;
  j["flops_convention"] = kFlopsConvention;
  j["achieved_gflops"] = achieved;
  j["achieved_gflops_formula"] =
      "llm.c: (6N + 6*L*C*T) * tokens / step time, N all parameters but an untied embedding's lookup table";
  const GemmShape g = largest_gemm(shape, BT);
  j["gemm_shape"] = {g.M, g.N, g.K};
  j["gemm_gflops"] = gemm_gflops;
  j["gemm_fraction"] = achieved / gemm_gflops;
  // The plan beside what the process came to hold (this rank's; in a CUDA build its host items, as the rest is
  // on the GPU).
  j["memory_plan"] = to_json(plan);
  j["peak_rss_mib"] = peak_rss_mib();
  const int64_t planned_host = free_device_memory() ? plan.total() - plan.device_bytes() : plan.total();
  j["planned_mib"] = double(planned_host) / (1 << 20);
  j["planned_to_peak_rss"] = j["planned_mib"].get<double>() / j["peak_rss_mib"].get<double>();
  j["stages"] = stages;
  if (dp > 1) {
    j["gradient_reduction"] = {{"bucket_mb", reduction.bucket_mb}, {"overlap", overlap}};
    j["data_parallel"] = data_parallel_table(runs, tokens, grid.dp_async()->overlaps());
  }
  return j;
}

}  // namespace est
