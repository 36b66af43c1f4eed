// The checkpoint readers (io/checkpoint.cpp) on edited copies of a checkpoint est wrote (hdf5_edits.hpp): est
// inspect --verify (describe and verify, in one process), then --resume's load into a model of the file's shape.
#include <fuzzer/FuzzedDataProvider.h>
#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_util.hpp"
#include "hdf5_edits.hpp"
#include "io/checkpoint.hpp"
#include "model/gpt2.hpp"
#include "io/inspect.hpp"
#include "train/runtime.hpp"

namespace {

// Every tensor kind a checkpoint holds, in a few kilobytes.
est::ModelShape small() {
  est::ModelShape s;
  s.max_seq_len = 4;
  s.vocab_size = s.padded_vocab_size = 64;
  s.n_layer = 2;
  s.n_head = 2;
  s.n_embd = 8;
  return s;
}

struct Resume {
  est::GPT2 model{small(), 1, 4};
  est::AdamW optimizer{model.layout(), {}};
  est::ProcessGrid grid{MPI_COMM_WORLD, 1};
  std::string base;  // the checkpoint est wrote, every input's starting point

  Resume() {
    model.init_random(1);
    est::TrainingState state;
    state.step = 3;
    state.strata = 2;
    state.balancer = {1.0, 2.0};
    state.config_yaml = "model: {n_layer: 2, n_head: 2, n_embd: 8}\n";
    const std::string path = est::fuzz::scratch_dir() + "/base.h5";
    est::save_checkpoint(path, model, optimizer, state, grid);
    base = est::fuzz::read_bytes(path);
  }
};

Resume* resume;

}  // namespace

// Open MPI's threads make LeakSanitizer's stop-the-world tracer crash now and then (always at exit, rarely after
// an input), which would read as a finding. HDF5 objects left open are still caught (expect_all_closed), and
// fuzz_trace checks the HDF5 helpers the checkpoint reader shares for leaks.
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  MPI_Init(nullptr, nullptr);
  static const est::KokkosSession kokkos(1);
  // As in est: its errors are its own messages, HDF5's error stack only noise; and inspect's report is not ours to see.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (!std::freopen("/dev/null", "w", stdout)) std::abort();
  resume = new Resume;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const bool json = in.ConsumeBool();
  const std::string path = est::fuzz::fresh_dir() + "/ckpt.h5";
  est::fuzz::write_edited(path, resume->base, in);
  est::fuzz::attempt([&] { est::inspect_file(path, true, json); });
  est::fuzz::attempt([&] { est::load_checkpoint(path, resume->model, resume->optimizer, resume->grid); });
  est::fuzz::expect_all_closed();
  return 0;
}
