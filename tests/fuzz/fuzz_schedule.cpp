// The EST schedule reader (est/schedule.cpp) on arbitrary bytes, then what a run does with a schedule it accepts:
// the checks against the model and the run length, and the stage at every stage boundary. The runs are three fixed
// ones and, when a NUL byte follows the schedule, the run of the config after it (if est accepts that config).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "est/schedule.hpp"
#include "fuzz_util.hpp"

namespace {

struct Run {
  est::ModelShape shape;
  int64_t steps;
  int tp;
};

Run run_of(const std::string& config) {
  const est::Config c = est::parse_config(config, "run.yaml");
  return {c.shape(), c.train.steps, c.parallel.tp};
}

// The quickstart, GPT-2 124M on two tensor-parallel ranks, and the smallest model for one step.
const std::vector<Run>& fixed_runs() {
  static const std::vector<Run> runs = {
      run_of("model: {n_layer: 4, n_head: 4, n_embd: 256, vocab_size: 256}\ntrain: {steps: 1000}\n"),
      run_of("model: {n_layer: 12, n_head: 12, n_embd: 768}\ntrain: {steps: 5000}\nparallel: {tp: 2}\n"),
      run_of("model: {n_layer: 1, n_head: 1, n_embd: 1, seq_len: 1, vocab_size: 2}\ntrain: {steps: 1}\n"),
  };
  return runs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t end = std::min(input.find('\0'), input.size());
  std::vector<Run> runs = fixed_runs();
  if (end < input.size()) est::fuzz::attempt([&] { runs.push_back(run_of(input.substr(end + 1))); });
  const std::string path = est::fuzz::scratch_file("schedule.yaml", input.data(), end);
  est::fuzz::attempt([&] {
    const est::Schedule s = est::load_schedule(path);
    for (const Run& run : runs) {
      est::fuzz::attempt([&] {
        est::check_schedule(s, run.shape, run.steps, run.tp);
        for (size_t i = 0; i < s.stages.size(); ++i) s.stage_at(s.stage_end(i, run.steps), run.steps);
      });
    }
  });
  return 0;
}
