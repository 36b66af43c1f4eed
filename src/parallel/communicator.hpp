#pragma once
// Collectives over one group of ranks, with what they cost: the bytes this rank put into them and the seconds it
// spent inside them. Backends: MPI (host buffers; any build) and, in CUDA builds, NCCL (device buffers).
#include <cstdint>
#include <memory>

namespace est {

struct CommStats {
  int64_t bytes = 0;     // payload bytes of the collectives this rank joined
  double seconds = 0.0;  // time inside them (including waiting for the others)
  int64_t calls = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In-place sums over the group. Float buffers live in the default memory space (device memory in CUDA builds);
  // double buffers are small host arrays (losses, norms, timings).
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  virtual void allreduce_max(double* data, int64_t n) = 0;
  // out (size() * n doubles, host) = every rank's n doubles, in rank order.
  virtual void allgather(const double* in, int64_t n, double* out) = 0;
  virtual void barrier() = 0;

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  CommStats stats_;
};

}  // namespace est
