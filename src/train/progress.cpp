#include "train/progress.hpp"

#include <cmath>

namespace est {

namespace {
constexpr double kEmaBeta = 0.9;
}

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

Progress::Progress(int total_steps, int log_every, FILE* out, bool live)
    : total_(total_steps), log_every_(log_every), out_(out), live_(out && live) {}

double Progress::tokens_per_second() const {
  if (ema_n_ == 0) return 0.0;
  const double mean = ema_ / (1.0 - std::pow(kEmaBeta, ema_n_));
  return tokens_per_step_ / mean;
}

std::string Progress::format(int step, float loss, const std::string& tags) const {
  const double tps = tokens_per_second();
  const double eta = tps > 0 ? (total_ - step) * tokens_per_step_ / tps : 0.0;
  char buf[200];
  std::snprintf(buf, sizeof buf, "step %*d/%d", int(std::to_string(total_).size()), step, total_);
  const std::string head = tags.empty() ? std::string(buf) : std::string(buf) + " | " + tags;
  std::snprintf(buf, sizeof buf, "%s | loss %.4f | %.0f tok/s | ETA %s", head.c_str(), loss, tps,
                format_duration(eta).c_str());
  return buf;
}

void Progress::step(int step, float loss, double step_seconds, long long tokens_per_step, const std::string& tags) {
  tokens_per_step_ = tokens_per_step;
  if (step > 1 || total_ == 1) {
    ema_ = kEmaBeta * ema_ + (1.0 - kEmaBeta) * step_seconds;
    ++ema_n_;
  }
  if (!out_) return;
  if (live_) {
    std::fprintf(out_, "\r%s\033[K", format(step, loss, tags).c_str());
    line_open_ = true;
  } else if (step % log_every_ == 0 || step == 1 || step == total_) {
    std::fprintf(out_, "%s\n", format(step, loss, tags).c_str());
  }
  std::fflush(out_);
}

void Progress::message(const std::string& line) {
  if (!out_) return;
  if (line_open_) std::fputc('\n', out_);
  line_open_ = false;
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

void Progress::finish() {
  if (!out_) return;
  if (line_open_) std::fputc('\n', out_);
  line_open_ = false;
  std::fflush(out_);
}

}  // namespace est
