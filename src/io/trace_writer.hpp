#pragma once
// The training trace, <output.dir>/trace.h5: one row per step appended to chunked, extendible datasets, written
// by rank 0 alone (the MPI-IO driver cannot do SWMR; the per-rank figures are gathered to it) in SWMR mode, so a
// reader can follow a running job (h5py: File(path, "r", libver="latest", swmr=True), then refresh()).
// The schema, one table, is in trace_writer.cpp's header comment.
#include <cstdint>
#include <string>
#include <vector>

namespace est {

struct TraceMetadata {
  std::string config_yaml;      // the effective configuration
  std::string schedule_yaml;    // the EST schedule's text ("" without one)
  std::string git_revision;     // of the source the binary was built from
  std::string host;
  std::string flops_convention;
  std::string library_versions;  // e.g. "HDF5 1.10.8; Kokkos 3.4.1; oneDNN 2.6.3; Open MPI 4.1.4"
  int ranks = 1, tp = 1, dp = 1;
  // The model, for analysis of the per-layer counts: architecture, layers, query and key/value heads, width,
  // MLP neurons.
  std::string arch = "gpt2";
  int n_layer = 1, n_head = 1, n_kv_head = 1, n_embd = 1, mlp_hidden = 4;
};

struct TraceRow {
  int64_t step = 0;  // 1-based: the optimizer step this row reports
  int32_t stage = 0;  // 1-based EST stage
  double p_heads = 1, p_mlp = 1, p_layers = 1;
  std::vector<uint8_t> active_layers;    // n_layer: 1 if the layer ran
  std::vector<int32_t> active_heads;     // n_layer: heads that ran (0 for a skipped layer), whole model
  std::vector<int32_t> active_neurons;   // n_layer: MLP neurons that ran
  double flops = 0, flops_cumulative = 0, flops_full = 0;  // executed this step, so far, full-model equivalent this step
  float loss = 0;
  float val_loss = 0;  // NaN when this step had no validation
  double lr = 0, grad_norm = 0;
  int64_t tokens = 0;  // so far
  double wall_seconds = 0;  // since the run (this invocation) started
  std::vector<double> compute_seconds, comm_seconds, wait_seconds;  // per rank
  std::vector<double> dp_reduce_seconds, dp_exposed_seconds;        // per rank: the gradient sum, all and unhidden
  double dp_bytes = 0, tp_bytes = 0;  // this rank 0's collective payload this step
};

class TraceWriter {
 public:
  // Creates `path`, or (resume_step >= 0) opens the existing trace (where a killed writer left it unreadable, the
  // copy flush() left instead), drops its rows after resume_step, copies it as flush() does, and appends. Then
  // switches to SWMR writing. Rows are flushed to the file every `flush_every` rows and at destruction.
  TraceWriter(const std::string& path, const TraceMetadata& meta, int64_t resume_step = -1, int flush_every = 10);
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  void append(const TraceRow& row);
  // Flushes the rows so far and copies the file to <path>.bak, which a clean destruction removes: the rows survive
  // a kill in the middle of a later flush.
  void flush();

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace est
