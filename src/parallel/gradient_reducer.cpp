#include "parallel/gradient_reducer.hpp"

#include <algorithm>
#include <chrono>

namespace est {

GradientReducer::GradientReducer(AsyncAllreduce& channel, const GradientReduction& how)
    : channel_(channel),
      overlap_(how.overlap && channel.overlaps()),
      bucket_(int64_t(how.bucket_mb * double(1 << 20)) / int64_t(sizeof(float))) {
  if (how.bucket_mb > 0) bucket_ = std::max<int64_t>(bucket_, 1);
}

void GradientReducer::begin(float* grads, int64_t n) {
  grads_ = grads;
  n_ = n;
  started_ = 0;
  buckets_ = 0;
  before_ = channel_.stats();
}

// Starts (or, not overlapping, runs) every whole bucket inside [0, end), and the last, partial one when end is
// the gradient's end.
void GradientReducer::start_through(int64_t end) {
  while (started_ < n_) {
    const int64_t stop = bucket_ > 0 ? std::min(started_ + bucket_, n_) : n_;
    if (stop > end) return;
    if (overlap_)
      channel_.start(grads_ + started_, stop - started_);
    else
      channel_.sum_now(grads_ + started_, stop - started_);
    started_ = stop;
    ++buckets_;
  }
}

void GradientReducer::complete(int64_t n) {
  if (overlap_) start_through(n);
}

ReductionStats GradientReducer::finish() {
  const auto t0 = std::chrono::steady_clock::now();
  start_through(n_);
  if (overlap_) channel_.wait_all();
  ReductionStats r;
  r.exposed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.busy_seconds = channel_.stats().seconds - before_.seconds;
  r.bytes = channel_.stats().bytes - before_.bytes;
  r.buckets = buckets_;
  return r;
}

}  // namespace est
