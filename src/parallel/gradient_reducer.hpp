#pragma once
// The data-parallel sum of a step's compact gradient in buckets of parallel.bucket_mb. The gradient is laid out
// in the order the backward pass completes it (model/active_layout.hpp); with parallel.overlap each bucket's sum
// starts as soon as the pass has completed the bucket and runs while the pass goes on, and the optimizer waits for
// the last. Without overlap every bucket starts after the pass. The buckets depend on the gradient's size alone
// and both ways run the same sums in the same order, so they give the same gradient to the last bit.
#include <cstdint>

#include "parallel/async_allreduce.hpp"

namespace est {

struct GradientReduction {
  double bucket_mb = 100;  // MiB per bucket; 0: the whole gradient in one
  bool overlap = true;
};

struct ReductionStats {
  double exposed_seconds = 0;  // the caller's wait for the sums once its backward pass was done
  double busy_seconds = 0;     // the sums' own time, hidden behind the backward pass or not
  int64_t bytes = 0;
  int buckets = 0;
};

class GradientReducer {
 public:
  GradientReducer(AsyncAllreduce& channel, const GradientReduction& how);

  // The step's gradient: n entries at grads, in the default memory space.
  void begin(float* grads, int64_t n);
  // Entries [0, n) are final: with overlap, the buckets they fill start.
  void complete(int64_t n);
  // Starts the buckets not started yet and waits for all (not overlapping: runs every bucket, in order).
  ReductionStats finish();

  // Whether sums run during the backward pass: asked for, and the channel can (MPI_THREAD_MULTIPLE).
  bool overlapping() const { return overlap_; }
  int64_t bucket_entries() const { return bucket_; }

 private:
  void start_through(int64_t end);

  AsyncAllreduce& channel_;
  bool overlap_;
  int64_t bucket_;  // entries per bucket, 0: one bucket
  float* grads_ = nullptr;
  int64_t n_ = 0, started_ = 0;  // entries [0, started_) are in started buckets
  int buckets_ = 0;
  CommStats before_;
};

}  // namespace est
