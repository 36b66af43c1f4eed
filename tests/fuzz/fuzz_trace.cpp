// The trace readers on edited copies of a trace est wrote (hdf5_edits.hpp): est inspect --verify (io/inspect.cpp),
// then a resumed run reopening it to append from a step the input chooses (io/trace_writer.cpp).
#include <fuzzer/FuzzedDataProvider.h>
#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "hdf5_edits.hpp"
#include "io/inspect.hpp"
#include "io/trace_writer.hpp"

namespace {

constexpr int kLayers = 2, kRanks = 2, kSteps = 5;

est::TraceMetadata metadata() {
  est::TraceMetadata m;
  m.config_yaml = "model: {n_layer: 2}\n";
  m.ranks = m.dp = kRanks;
  m.n_layer = kLayers;
  return m;
}

// Two stages, and a validation at the last step only.
est::TraceRow row(int64_t step) {
  est::TraceRow r;
  r.step = step;
  r.stage = step <= 2 ? 1 : 2;
  r.active_layers.assign(kLayers, 1);
  r.active_heads.assign(kLayers, 2);
  r.active_neurons.assign(kLayers, 32);
  r.loss = 5.0f - 0.1f * float(step);
  r.val_loss = step == kSteps ? 4.5f : NAN;
  r.tokens = 64 * step;
  r.compute_seconds = r.comm_seconds = r.wait_seconds = std::vector<double>(kRanks, 0.01);
  r.dp_reduce_seconds = r.dp_exposed_seconds = std::vector<double>(kRanks, 0.0);
  return r;
}

const std::string* base;  // the trace est wrote, every input's starting point

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // As in est: its errors are its own messages, HDF5's error stack only noise; and inspect's report is not ours to see.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (!std::freopen("/dev/null", "w", stdout)) std::abort();
  const std::string path = est::fuzz::scratch_dir() + "/base.h5";
  {
    est::TraceWriter writer(path, metadata());
    for (int64_t step = 1; step <= kSteps; ++step) writer.append(row(step));
  }
  base = new std::string(est::fuzz::read_bytes(path));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const bool json = in.ConsumeBool();
  const int64_t resume_step = in.ConsumeIntegralInRange<int64_t>(0, kSteps + 1);
  const std::string path = est::fuzz::fresh_dir() + "/trace.h5";
  est::fuzz::write_edited(path, *base, in);
  est::fuzz::attempt([&] { est::inspect_file(path, true, json); });
  est::fuzz::attempt([&] {
    est::TraceWriter writer(path, metadata(), resume_step);
    writer.append(row(resume_step + 1));
    writer.flush();  // here, so that a failure is an exception rather than the destructor's warning
  });
  est::fuzz::expect_all_closed();
  return 0;
}
