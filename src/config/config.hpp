#pragma once
// The training configuration: YAML file + `--set key=value` overrides, checked against a schema so an
// unknown key, a wrong type or an out-of-range value is one clear error naming the file and the key.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "est/head_units.hpp"
#include "model/attention_kind.hpp"
#include "model/shape.hpp"

namespace est {

struct ModelConfig {
  std::string arch = "gpt2";  // gpt2 | llama
  int n_layer = 12;
  int n_head = 12;
  int n_embd = 768;
  // Llama's: key/value heads (0: n_head), MLP width (0: 8/3 n_embd rounded up to mlp_multiple_of), RMSNorm
  // epsilon, RoPE base, and whether the LM head is the embedding (unset: GPT-2's tied, Llama's separate).
  int n_kv_head = 0;
  int mlp_hidden = 0;
  int mlp_multiple_of = 256;
  double norm_eps = 1e-5;
  double rope_theta = 10000;
  std::optional<bool> tie_embeddings;
  int seq_len = 1024;      // training context T
  int max_seq_len = 0;     // rows of wpe; 0 means seq_len
  int vocab_size = 50257;
  // "" (random, seeded by train.seed), a decimal seed, "llmc:PATH" (an llm.c model file: GPT-2) or
  // "llama2c:PATH" (a llama2.c one: Llama).
  std::string init;
  // How attention runs (model/attention_kind.hpp): materialized | fused. Not part of the architecture: the same
  // parameters train either way.
  std::string attention = "materialized";
};

struct DataConfig {
  std::string train;  // path or glob of llm.c token shards
  std::string val;    // optional
  bool shuffle = true;  // training windows in a random order per epoch (train.seed), as llm.c does
};

struct TrainSection {
  int batch_size = 4;
  int steps = 100;
  double lr = 6e-4;
  double min_lr = 6e-5;
  int warmup = 0;
  std::string lr_schedule = "cosine";  // cosine | wsd (optim/lr_schedule.hpp)
  double decay_fraction = 0.2;         // wsd: the final part of the run that decays to min_lr
  double weight_decay = 0.1;
  bool decay_embeddings = false;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double grad_clip = 1.0;  // 0 disables clipping
  uint64_t seed = 1337;
  int eval_every = 0;      // 0: only at the end
  int eval_batches = 8;
  int log_every = 10;      // plain-line progress interval when stdout is not a terminal
  int stop_after = 0;      // end this invocation cleanly after N steps, with a checkpoint (0: run to the end)
};

// Evolving Subnetwork Training.
struct EstConfig {
  std::string schedule;            // YAML schedule; empty: train the full model every step
  std::string inactive = "skip";   // skip | zero_grad: AdamW for parameters outside the subnetwork
  std::string layer_scaling = "none";  // none | inverse: scale active layers' branches by 1/p_L
  int64_t seed = -1;               // subnetwork draws; -1: train.seed
  int strata = 0;                  // head/neuron draws stratified over this many groups; 0: est_strata()'s default
  std::string head_unit = "kv_group";  // kv_group | query: what a head draw samples (head_units.hpp)
};

// Parallel layout and load balancing (the process grid comes from the MPI world and parallel.tp).
struct ParallelConfig {
  int tp = 1;                      // tensor-parallel size; data-parallel size = ranks / tp
  bool balance = true;             // stage-aware load balancing
  double balance_threshold = 1.05; // re-plan when max/mean compute over ranks stays above this...
  int balance_patience = 5;        // ...for this many steps
  int slow_rank = -1;              // emulate a slow node: this rank's compute takes slow_factor times longer
  double slow_factor = 1.0;
  // The data-parallel gradient's sum: buckets of bucket_mb MiB (0: one), each started as the backward pass
  // completes it (overlap) or all after the pass (parallel/gradient_reducer.hpp).
  double bucket_mb = 100;
  bool overlap = true;
};

struct OutputConfig {
  std::string dir;         // default runs/<config file stem>
  bool save_model = true;  // <dir>/model.bin at the end: llm.c's format for GPT-2, llama2.c's for Llama
  int checkpoint_every = 0;  // HDF5 checkpoint every N steps (0: only when stopping early, and last under --resume auto)
  int keep = 3;              // checkpoints kept (the newest)
  bool trace = true;         // <dir>/trace.h5, one row per step
  std::string on_checkpoint_error = "stop";  // stop | warn: a checkpoint that cannot be written ends the run, or
                                             // is reported and retried at the next one
};

struct RuntimeConfig {
  int threads = 0;            // 0: all cores
  std::string gemm = "auto";  // auto | onednn | cblas | cublas
  std::string precision = "fp32";  // fp32 | tf32 | bf16: what the GEMMs compute in
};

struct Config {
  ModelConfig model;
  DataConfig data;
  TrainSection train;
  EstConfig est;
  ParallelConfig parallel;
  OutputConfig output;
  RuntimeConfig runtime;

  std::string path;       // the config file
  std::string yaml_text;  // the effective configuration (file + overrides), for records

  // Model init parsed from model.init.
  bool init_from_llmc() const { return model.init.rfind("llmc:", 0) == 0; }
  std::string init_llmc_path() const { return model.init.substr(5); }
  bool init_from_llama2c() const { return model.init.rfind("llama2c:", 0) == 0; }
  std::string init_llama2c_path() const { return model.init.substr(8); }
  uint64_t init_seed() const;
  uint64_t est_seed() const { return est.seed >= 0 ? static_cast<uint64_t>(est.seed) : train.seed; }
  // The strata of the draws. Default: the largest power of two up to 8 that divides the head units (model.n_head,
  // or model.n_kv_head for KV-group draws), whatever the layout, so that 1, 2, 4 and 8 tensor-parallel ranks
  // (those that divide it) train the same subnetworks.
  int est_strata() const;
  HeadUnit head_unit() const { return est.head_unit == "query" ? HeadUnit::query : HeadUnit::kv_group; }
  AttentionKind attention() const {
    return model.attention == "fused" ? AttentionKind::fused : AttentionKind::materialized;
  }

  ModelShape shape() const;
};

// Loads FILE and applies overrides ("key=value", value parsed as YAML). Throws InputError.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The configuration a file records as text (a trace's effective config), checked as load_config checks a file;
// errors name `where` (e.g. "trace.h5: /@config") and the key.
Config parse_config(const std::string& text, const std::string& where);

}  // namespace est
