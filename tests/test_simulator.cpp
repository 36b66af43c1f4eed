// est simulate: the cost model's terms on a cluster with round numbers, checked against hand arithmetic; its
// FLOPs against est flops; the calibration recovering parameters from traces made with them; and the errors a
// bad cluster file or trace gives.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <fstream>
#include <thread>

#include "config/config.hpp"
#include "est/flops.hpp"
#include "input_error.hpp"
#include "io/trace_writer.hpp"
#include "sim/calibration.hpp"
#include "sim/cluster.hpp"
#include "sim/cost_model.hpp"
#include "sim/simulation.hpp"
#include "test_util.hpp"
#include "train/flops_report.hpp"

namespace est {
namespace {

using test::TempDir;

const char* const kRoundCluster = R"(name: round
description: round numbers for hand arithmetic
sources: ["test"]
node:
  ranks_per_node: 4
  cores: 8
  peak_flops: 1.0e12
  gemm: {efficiency: 0.5, half_rate_flops: 1.0e9, launch_seconds: 1.0e-5}
  memory_bandwidth: 1.0e11
  imbalance: 1
  power_watts: 1000
network:
  intra: {alpha: 1.0e-6, beta: 1.0e-9}
  inter: {alpha: 1.0e-5, beta: 1.0e-8}
allreduce: ring
)";

Cluster cluster_from(const TempDir& dir, const std::string& text) {
  const std::string path = dir.file("cluster.yaml");
  std::ofstream(path) << text;
  return read_cluster(path);
}

TEST(Simulator, GemmTimeIsLaunchPlusWorkAtTheShapesEfficiency) {
  TempDir dir;
  const Cluster c = cluster_from(dir, kRoundCluster);
  // A GEMM of half_rate_flops runs at half of 0.5 x 1e12: 1e9 / 2.5e11 = 4 ms, plus 10 us launch; two of them.
  EXPECT_NEAR(gemm_seconds(c, {1e9, 2}), 2 * (4e-3 + 1e-5), 1e-12);
  // A huge one approaches the efficiency's rate: 1e15 / 5e11 = 2000 s (+ 2 ms of saturation, + launch).
  EXPECT_NEAR(gemm_seconds(c, {1e15, 1}), 2000 + 2e-3 + 1e-5, 1e-9);
}

TEST(Simulator, RingAndTreeAllReduce) {
  const Link link{1e-6, 1e-9};
  // Ring over 4: 2·3 alpha + 2·3/4 · 1e6 bytes · beta = 6 us + 1.5 ms.
  EXPECT_NEAR(allreduce_seconds(AllreduceAlgorithm::ring, link, 4, 1, 1e6), 6e-6 + 1.5e-3, 1e-15);
  // Tree over 4: 2·log2(4) · (alpha + 1e6 · beta) = 4 · 1.001 ms.
  EXPECT_NEAR(allreduce_seconds(AllreduceAlgorithm::tree, link, 4, 1, 1e6), 4 * 1.001e-3, 1e-15);
  // Tree over 5 needs 3 levels; auto takes the faster.
  EXPECT_NEAR(allreduce_seconds(AllreduceAlgorithm::tree, link, 5, 1, 1e6), 6 * 1.001e-3, 1e-15);
  EXPECT_NEAR(allreduce_seconds(AllreduceAlgorithm::automatic, link, 4, 1, 1e6), 6e-6 + 1.5e-3, 1e-15);
  // Many small messages favour the tree over 64 ranks: ring 2·63·1000 alpha = 126 ms; tree 12·1000 alpha + ...
  EXPECT_LT(allreduce_seconds(AllreduceAlgorithm::automatic, link, 64, 1000, 1e3),
            allreduce_seconds(AllreduceAlgorithm::ring, link, 64, 1000, 1e3));
  EXPECT_EQ(allreduce_seconds(AllreduceAlgorithm::ring, link, 1, 10, 1e6), 0.0);
}

TEST(Simulator, OneFullStepOnATensorAndDataParallelRank) {
  TempDir dir;
  const Cluster c = cluster_from(dir, kRoundCluster);
  ModelShape s = test::small_shape(2, 2, 32, 128, 16);
  // tp 2 x dp 2 inside a node of 4: this rank has 1 of 2 heads (A = 16) and 64 of 128 neurons, 2 sequences of 16.
  RankStep r;
  r.sequences = 2;
  r.active_layers = 2;
  r.heads = 1;
  r.neurons = 64;
  r.tp = 2;
  r.dp = 2;
  const StepWork w = step_work(s, 16, r);
  // n = 32 tokens. Per layer, forward FLOPs per call and calls (3 per forward GEMM, 2 layers):
  // QKV 2·32·32·48 = 98304 (x6), projection 2·32·16·32 = 32768 (x6), fc and MLP projection 2·32·32·64 = 131072
  // (x6 each), attention core 16·16·16 = 4096 (x 2 GEMMs x 2 sequences x 3 x 2 = 24); LM head 2·32·32·128 =
  // 262144 (x3).
  const auto call = [](double flops) { return 1e-5 + (flops + 1e9) / 5e11; };
  const double gemm = 6 * call(98304) + 6 * call(32768) + 12 * call(131072) + 24 * call(4096) + 3 * call(262144);
  // Elementwise floats: per layer 4 x 5·32·32 (LayerNorms, residuals) + 5·32·64 (GELU) + 5·32·8 (softmax) =
  // 32000, two layers 64000; embedding and final LayerNorm 10·32·32 = 10240, cross-entropy 4·32·128 = 16384;
  // AdamW 7 x 17568 parameters (4096 wte + 512 wpe + 64 lnf + 2 x 6448 per layer) = 122976. 213600 floats.
  const double elementwise = 4 * 213600 / 1e11;
  const StepCost cost = step_cost(c, w);
  EXPECT_NEAR(cost.compute_seconds, gemm + elementwise, 1e-12);
  // TP: 4 all-reduces per layer + the norm's, 4·2·32·32 floats + 8 bytes, ring of 2 in the node.
  EXPECT_NEAR(cost.tp_comm_seconds, 2 * 9 * 1e-6 + (4 * 8192 + 8) * 1e-9, 1e-15);
  // DP: the compact gradient (17568 floats, one bucket) and the loss, ring of 2 in the node. The bucket holds the
  // embeddings, which the backward pass completes last: nothing of it is hidden.
  EXPECT_NEAR(cost.dp_reduce_seconds, 2 * 2 * 1e-6 + (4 * 17568 + 8) * 1e-9, 1e-15);
  EXPECT_NEAR(cost.dp_exposed_seconds, cost.dp_reduce_seconds, 1e-15);
  EXPECT_DOUBLE_EQ(cost.step_seconds(), cost.compute_seconds + cost.tp_comm_seconds + cost.dp_exposed_seconds);
  // Imbalance slows a rank that has partners to wait for, and not one alone.
  Cluster uneven = c;
  uneven.imbalance = 1.5;
  EXPECT_NEAR(step_cost(uneven, w).compute_seconds, 1.5 * (gemm + elementwise), 1e-12);
  RankStep alone = r;
  alone.tp = alone.dp = 1;
  EXPECT_DOUBLE_EQ(step_cost(uneven, step_work(s, 16, alone)).compute_seconds,
                   step_cost(c, step_work(s, 16, alone)).compute_seconds);
  // A data-parallel group across nodes pays the inter-node link.
  r.dp_inter_node = true;
  EXPECT_NEAR(step_cost(c, step_work(s, 16, r)).dp_reduce_seconds, 2 * 2 * 1e-5 + (4 * 17568 + 8) * 1e-8, 1e-14);
}

// Four layers of 1000 bytes of gradient each and 1000 bytes of embeddings, in buckets of one layer: the LM head's
// backward ends 2 s into a 10 s pass, then a layer completes every 2 s (at 4, 6, 8, 10 s), the embeddings at 10 s.
StepWork four_layer_buckets(bool overlap) {
  StepWork w;
  w.gradient = {0, 250, 4, 250};
  w.reduction = {1000, overlap};
  return w;
}

TEST(Simulator, BucketsStartAsTheBackwardPassCompletesThem) {
  const StepWork w = four_layer_buckets(true);
  EXPECT_EQ(w.bucket_bytes(), std::vector<double>(5, 1000.0));
  // 1 s each: 4-5, 6-7, 8-9, 10-11, and the embeddings' 11-12: 2 s past the pass's end.
  EXPECT_DOUBLE_EQ(exposed_seconds(w, std::vector<double>(5, 1.0), 10, 2, 1.0), 2.0);
  // 3 s each: they queue, 4-7, 7-10, 10-13, 13-16, 16-19: 9 s past it.
  EXPECT_DOUBLE_EQ(exposed_seconds(w, std::vector<double>(5, 3.0), 10, 2, 1.0), 9.0);
  // Hiding half of what could be hidden: 2 + 0.5 x (5 - 2).
  EXPECT_DOUBLE_EQ(exposed_seconds(w, std::vector<double>(5, 1.0), 10, 2, 0.5), 3.5);
  // Not overlapped, all of it; one bucket holding the embeddings, all of it too.
  EXPECT_DOUBLE_EQ(exposed_seconds(four_layer_buckets(false), std::vector<double>(5, 1.0), 10, 2, 1.0), 5.0);
  StepWork one = w;
  one.reduction.bucket_bytes = 0;
  EXPECT_EQ(one.bucket_bytes(), std::vector<double>{5000.0});
  EXPECT_DOUBLE_EQ(exposed_seconds(one, {5.0}, 10, 2, 1.0), 5.0);
  // An LM-head side of 1000 bytes first: its bucket runs 2-3, and the rest as before.
  StepWork head = w;
  head.gradient.head = 250;
  EXPECT_DOUBLE_EQ(exposed_seconds(head, std::vector<double>(6, 1.0), 10, 2, 1.0), 2.0);
}

TEST(Simulator, RanksSharingCoresComputeThatMuchSlower) {
  TempDir dir;
  const Cluster c = cluster_from(dir, kRoundCluster);
  // 8 cores: 4 ranks x 2 threads fill them; x 3 threads is 12 threads on 8 cores, 1.5 times slower; threads 0
  // (one per core) puts 4 x 8 = 32 threads on them.
  EXPECT_DOUBLE_EQ(oversubscription(c, 4, 2), 1.0);
  EXPECT_DOUBLE_EQ(oversubscription(c, 2, 1), 1.0);  // idle cores do not speed a rank up
  EXPECT_DOUBLE_EQ(oversubscription(c, 4, 3), 1.5);
  EXPECT_DOUBLE_EQ(oversubscription(c, 4, 0), 4.0);
  Cluster gpus = c;
  gpus.cores = INFINITY;
  EXPECT_DOUBLE_EQ(oversubscription(gpus, 8, 0), 1.0);
  // The step of OneFullStepOnATensorAndDataParallelRank with 4 threads per rank: 16 threads on 8 cores double the
  // compute (and imbalance multiplies on top); the all-reduces are as they were.
  const ModelShape s = test::small_shape(2, 2, 32, 128, 16);
  RankStep r;
  r.sequences = 2;
  r.active_layers = 2;
  r.heads = 1;
  r.neurons = 64;
  r.tp = r.dp = 2;
  r.ranks_on_node = 4;
  const StepCost fits = step_cost(c, step_work(s, 16, r));
  r.threads = 4;
  const StepCost shared = step_cost(c, step_work(s, 16, r));
  EXPECT_NEAR(shared.compute_seconds, 2 * fits.compute_seconds, 1e-15);
  EXPECT_DOUBLE_EQ(shared.tp_comm_seconds, fits.tp_comm_seconds);
  EXPECT_DOUBLE_EQ(shared.dp_reduce_seconds, fits.dp_reduce_seconds);
  Cluster uneven = c;
  uneven.imbalance = 1.5;
  EXPECT_NEAR(step_cost(uneven, step_work(s, 16, r)).compute_seconds, 3 * fits.compute_seconds, 1e-15);
}

TEST(Simulator, GemmFlopsAgreeWithEstFlops) {
  ModelShape llama = test::small_shape(4, 4, 64, 256, 32);
  llama.arch = Arch::llama;
  llama.n_kv_head = 2;
  llama.mlp_hidden = 256;
  for (const ModelShape& s : {test::small_shape(4, 4, 64, 256, 32), llama}) {
    for (const auto& [layers, heads, neurons] : {std::tuple{4, 4, 256}, {2, 2, 128}, {3, 1, 37}}) {
      RankStep r;
      r.sequences = 3;
      r.active_layers = layers;
      r.heads = heads;
      r.neurons = neurons;
      std::vector<bool> mask(4, false);
      for (int l = 0; l < layers; ++l) mask[l] = true;
      EXPECT_NEAR(step_work(s, 32, r).gemm_flops(), step_flops(s, 32, 3 * 32, mask, heads, neurons).executed, 1e-3)
          << arch_name(s.arch) << " " << layers << " layers, " << heads << " heads";
    }
  }
}

Config est_config() {
  Config cfg;
  cfg.path = "tiny.yaml";
  cfg.model.n_layer = 4;
  cfg.model.n_head = 4;
  cfg.model.n_embd = 64;
  cfg.model.seq_len = 32;
  cfg.model.vocab_size = 256;
  cfg.train.batch_size = 4;
  cfg.train.steps = 50;
  cfg.est.schedule = std::string(EST_SOURCE_DIR) + "/schedules/gpt2-est.yaml";
  return cfg;
}

TEST(Simulator, EstSavingIsTheFlopsSavingWhenOnlyFlopsCost) {
  TempDir dir;
  Cluster c = cluster_from(dir, kRoundCluster);
  c.gemm = {1.0, 0.0, 0.0};
  c.memory_bandwidth = 1e300;
  const Config cfg = est_config();
  const auto sim = simulate(cfg, c, {{1}, ScalingMode::strong, 1, 1});
  const auto& point = sim["points"][0];
  EXPECT_NEAR(point["time_saving"].get<double>(), flops_report(cfg)["saving"].get<double>(), 1e-9);
  EXPECT_NEAR(point["energy_saving"].get<double>(), point["time_saving"].get<double>(), 1e-12);
  EXPECT_GT(point["time_saving"].get<double>(), 0.1);
  ASSERT_EQ(point["stages"].size(), 3u);
  // Energy: 1000 W for the run's seconds on one node.
  EXPECT_NEAR(point["est"]["energy_joules"].get<double>(), 1000 * point["est"]["run_seconds"].get<double>(), 1e-9);
}

TEST(Simulator, RuntimeThreadsOfTheRanksOnANodeSetTheOversubscription) {
  TempDir dir;
  const Cluster c = cluster_from(dir, kRoundCluster);
  Config cfg = est_config();
  const ScalingPoint four{1, 4, 2, 2, 4, 2.0};  // 4 ranks on the node's 8 cores
  cfg.runtime.threads = 2;
  const auto fits = simulate_point(cfg, c, four)["stages"][2];
  cfg.runtime.threads = 4;
  const auto shared = simulate_point(cfg, c, four)["stages"][2];
  EXPECT_DOUBLE_EQ(fits["oversubscription"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(shared["oversubscription"].get<double>(), 2.0);
  EXPECT_NEAR(shared["compute_seconds"].get<double>(), 2 * fits["compute_seconds"].get<double>(), 1e-15);
}

TEST(Simulator, CommunicationAndLaunchesShrinkTheSaving) {
  TempDir dir;
  const Cluster c = cluster_from(dir, kRoundCluster);
  const Config cfg = est_config();
  const auto point = simulate(cfg, c, {{1}, ScalingMode::strong, 2, 4})["points"][0];
  EXPECT_EQ(point["tp"].get<int>(), 2);
  EXPECT_EQ(point["dp"].get<int>(), 2);
  EXPECT_GT(point["stages"][2]["tp_comm_seconds"].get<double>(), 0.0);
  EXPECT_LT(point["time_saving"].get<double>(), flops_report(cfg)["saving"].get<double>());
}

TEST(Simulator, TheRankWithTheLargerShareOfAnUnevenBatchSetsThePace) {
  TempDir dir;
  const Cluster c = cluster_from(dir, kRoundCluster);
  const Config cfg = est_config();
  // 4 sequences over 3 data-parallel ranks: one rank has 2, as every rank does with 6.
  const ScalingPoint uneven{1, 3, 1, 3, 4, 4.0 / 3};
  const ScalingPoint even{1, 3, 1, 3, 6, 2.0};
  EXPECT_DOUBLE_EQ(simulate_point(cfg, c, uneven)["stages"][2]["compute_seconds"].get<double>(),
                   simulate_point(cfg, c, even)["stages"][2]["compute_seconds"].get<double>());
}

// Traces whose seconds are the cost model's on `truth`, at 1 rank for three shapes and at 2 ranks (dp 2, one
// rank 10% slower than the other), of runs with `threads` compute threads per rank.
std::vector<std::string> synthetic_traces(const TempDir& dir, const Cluster& truth, int threads = 1) {
  struct Run {
    int T, batch, dp;
    double bucket_mb;
  };
  std::vector<std::string> paths;
  for (const Run run : {Run{16, 2, 1, 25}, Run{32, 4, 1, 25}, Run{64, 1, 1, 25}, Run{32, 4, 2, 0.01}}) {
    const std::string path = dir.file("trace_" + std::to_string(paths.size()) + ".h5");
    TraceMetadata m;
    m.config_yaml = "model:\n  n_layer: 4\n  n_head: 4\n  n_embd: 64\n  seq_len: " + std::to_string(run.T) +
                    "\n  vocab_size: 256\ntrain:\n  batch_size: " + std::to_string(run.batch) +
                    "\nruntime:\n  threads: " + std::to_string(threads) +
                    "\nparallel:\n  bucket_mb: " + std::to_string(run.bucket_mb) + "\n";
    m.ranks = m.dp = run.dp;
    m.n_layer = 4;
    TraceWriter writer(path, m);
    const ModelShape s = test::small_shape(4, 4, 64, 256, run.T);
    for (int step = 1; step <= 12; ++step) {
      const bool half = step <= 6;  // stage 1: 2 layers, 2 heads, 128 neurons; stage 2: the full model
      TraceRow row;
      row.step = step;
      row.stage = half ? 1 : 2;
      RankStep r;
      r.sequences = double(run.batch) / run.dp;
      r.active_layers = half ? 2 : 4;
      r.heads = half ? 2 : 4;
      r.neurons = half ? 128 : 256;
      r.dp = run.dp;
      r.reduction.bucket_bytes = run.bucket_mb * (1 << 20);
      for (int l = 0; l < 4; ++l) {
        const bool active = !half || l % 2 == 0;
        row.active_layers.push_back(active);
        row.active_heads.push_back(active ? int(r.heads) : 0);
        row.active_neurons.push_back(active ? int(r.neurons) : 0);
      }
      const StepWork w = step_work(s, run.T, r);
      const StepCost cost = step_cost(truth, w);
      const double compute = cost.compute_seconds / truth.imbalance;
      for (int k = 0; k < run.dp; ++k) {
        row.compute_seconds.push_back(run.dp == 1 ? compute : compute * (k == 0 ? 1.1 : 0.9));
        row.comm_seconds.push_back(cost.dp_exposed_seconds);
        row.wait_seconds.push_back(0);
        row.dp_reduce_seconds.push_back(cost.dp_reduce_seconds);
        row.dp_exposed_seconds.push_back(cost.dp_exposed_seconds);
      }
      row.dp_bytes = w.dp.bytes;
      writer.append(row);
    }
    paths.push_back(path);
  }
  return paths;
}

TEST(Simulator, CalibrationRecoversTheParametersTracesWereMadeWith) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "the 2-rank trace would oversubscribe one core";
  TempDir dir;
  Cluster truth;
  truth.peak_flops = 2e10;
  truth.gemm = {1.0, 0.0, 2e-5};
  truth.memory_bandwidth = 5e9;
  truth.intra = {3e-5, 2e-10};
  truth.overlap_efficiency = 0.6;
  const Calibration cal = calibrate(synthetic_traces(dir, truth), "synthetic");
  const Cluster& c = cal.cluster;
  EXPECT_NEAR(c.peak_flops * c.gemm.efficiency, 2e10, 0.01 * 2e10);
  EXPECT_NEAR(c.gemm.launch_seconds, 2e-5, 0.01 * 2e-5);
  EXPECT_NEAR(c.memory_bandwidth, 5e9, 0.01 * 5e9);
  EXPECT_NEAR(c.intra.alpha, 3e-5, 0.01 * 3e-5);
  EXPECT_NEAR(c.intra.beta, 2e-10, 0.01 * 2e-10);
  EXPECT_NEAR(c.imbalance, 1.1, 1e-9);
  EXPECT_NEAR(c.overlap_efficiency, 0.6, 1e-6);
  EXPECT_EQ(cal.compute_points, 8);
  EXPECT_EQ(cal.comm_points, 2);
  EXPECT_EQ(cal.overlap_points, 2);
  EXPECT_EQ(c.ranks_per_node, 2);
  EXPECT_EQ(c.cores, double(std::thread::hardware_concurrency()));
  EXPECT_EQ(cal.threads, std::set<int>{1});
  // What it writes reads back as a cluster file.
  const std::string out = dir.file("fitted.yaml");
  std::ofstream(out) << format_calibration(cal, {"a.h5"});
  EXPECT_NEAR(read_cluster(out).memory_bandwidth, c.memory_bandwidth, 1e-6 * c.memory_bandwidth);
  // A fit without elementwise cost writes infinite bandwidth, which prices that traffic at zero.
  Calibration free = cal;
  free.cluster.memory_bandwidth = INFINITY;
  std::ofstream(out) << format_calibration(free, {"a.h5"});
  EXPECT_TRUE(std::isinf(read_cluster(out).memory_bandwidth));
}

InputError cluster_error(const std::string& text) {
  TempDir dir;
  try {
    cluster_from(dir, text);
  } catch (const InputError& e) {
    EXPECT_NE(e.file().find(dir.file("cluster.yaml")), std::string::npos) << e.what();
    return e;
  }
  ADD_FAILURE() << "no error for\n" << text;
  return InputError("", "", "");
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  return text.replace(text.find(from), from.size(), to);
}

TEST(Simulator, ClusterFileErrorsNameTheFileAndKey) {
  EXPECT_EQ(cluster_error(replaced(kRoundCluster, "efficiency:", "efficency:")).key(), "node.gemm.efficency");
  EXPECT_EQ(cluster_error(replaced(kRoundCluster, ", beta: 1.0e-8", "")).key(), "network.inter.beta");
  EXPECT_EQ(cluster_error(replaced(kRoundCluster, "  power_watts: 1000\n", "")).key(), "node.power_watts");
  EXPECT_EQ(cluster_error(replaced(kRoundCluster, "allreduce: ring", "allreduce: star")).key(), "allreduce");
  EXPECT_EQ(cluster_error(replaced(kRoundCluster, "peak_flops: 1.0e12", "peak_flops: fast")).key(),
            "node.peak_flops");
  EXPECT_EQ(cluster_error(std::string(kRoundCluster) + "colour: blue\n").key(), "colour");
  EXPECT_EQ(cluster_error(replaced(kRoundCluster, "  cores: 8\n", "")).key(), "node.cores");
  EXPECT_EQ(cluster_error(replaced(kRoundCluster, "cores: 8", "cores: 0")).key(), "node.cores");
  const std::string inter = "inter: {alpha: 1.0e-5, beta: 1.0e-8}";
  EXPECT_EQ(cluster_error(replaced(kRoundCluster, inter, inter + "\n  overlap_efficiency: 1.5")).key(),
            "network.overlap_efficiency");
}

TEST(Simulator, OverlapEfficiencyIsOptionalAndReadBack) {
  TempDir dir;
  EXPECT_EQ(cluster_from(dir, kRoundCluster).overlap_efficiency, 1.0);
  const std::string inter = "inter: {alpha: 1.0e-5, beta: 1.0e-8}";
  Cluster c = cluster_from(dir, replaced(kRoundCluster, inter, inter + "\n  overlap_efficiency: 0.25"));
  EXPECT_EQ(c.overlap_efficiency, 0.25);
  const std::string out = dir.file("again.yaml");
  std::ofstream(out) << format_cluster(c, "");
  EXPECT_EQ(read_cluster(out).overlap_efficiency, 0.25);
}

std::string calibration_error_key(const std::vector<std::string>& traces) {
  try {
    calibrate(traces, "x");
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), traces.front()) << e.what();
    return e.key();
  }
  return "";
}

TEST(Simulator, CalibrationErrorsForAMissingTraceOrDataset) {
  TempDir dir;
  EXPECT_EQ(calibration_error_key({dir.file("absent.h5")}), "file");
  Cluster truth;
  truth.peak_flops = 1e10;
  truth.memory_bandwidth = 1e9;
  const std::string trace = synthetic_traces(dir, truth).front();
  {
    const hid_t f = H5Fopen(trace.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    ASSERT_GE(H5Ldelete(f, "compute_seconds", H5P_DEFAULT), 0);
    H5Fclose(f);
  }
  EXPECT_EQ(calibration_error_key({trace}), "compute_seconds");
  // Two ranks with a thread per core each (runtime.threads 0) share the cores.
  EXPECT_EQ(calibration_error_key({synthetic_traces(dir, truth, 0).back()}), "/@config: runtime.threads");
}

}  // namespace
}  // namespace est
