#pragma once
// Training progress: one live line (step/total, loss, tokens/s, ETA) on a terminal, plain lines otherwise.
#include <cstdio>
#include <string>

namespace est {

class Progress {
 public:
  // out null: silent (ranks other than the first). live: one line rewritten in place (a terminal), else plain
  // lines every log_every steps.
  Progress(int total_steps, int log_every, FILE* out, bool live);

  // Called after every step; step is 1-based; `tags` (e.g. "stage 2") go after the step count.
  void step(int step, float loss, double step_seconds, long long tokens_per_step, const std::string& tags = "");
  // A line of its own (validation loss, notices) that does not garble the live line.
  void message(const std::string& line);
  void finish();

  double tokens_per_second() const;

 private:
  std::string format(int step, float loss, const std::string& tags) const;

  int total_, log_every_;
  FILE* out_;
  bool live_;
  bool line_open_ = false;
  // EMA of the step time (bias-corrected), step 1 excluded as warm-up like llm.c.
  double ema_ = 0.0;
  int ema_n_ = 0;
  long long tokens_per_step_ = 0;
};

std::string format_duration(double seconds);

}  // namespace est
