#pragma once
// Non-blocking in-place sums over one group, for the buckets of the data-parallel gradient: started while the
// backward pass goes on, so their traffic hides behind its compute. CPU builds: MPI on a communication thread
// (async_allreduce_mpi.cpp); CUDA builds: NCCL on a side stream (async_allreduce_nccl.cpp). Each holds a
// communicator of its own beside the group's blocking ones, so the two never interleave on one.
#include <mpi.h>

#include <cstdint>
#include <memory>

#include "parallel/communicator.hpp"

namespace est {

class AsyncAllreduce {
 public:
  virtual ~AsyncAllreduce() = default;
  // Starts summing data[0, n) (the default memory space) over the group once the kernels issued so far have
  // written it. Every rank starts the same sums in the same order; they run one after another.
  virtual void start(float* data, int64_t n) = 0;
  // Returns once every started sum is complete and visible to what follows.
  virtual void wait_all() = 0;
  // The sum start would run, run now in the caller (none may be pending): the blocking way, without the hand-off.
  virtual void sum_now(float* data, int64_t n) = 0;
  // Whether started sums run while the caller goes on; false where the MPI library gives no
  // MPI_THREAD_MULTIPLE: wait_all then runs them.
  virtual bool overlaps() const = 0;
  // bytes: the payload started; seconds: the sums' own time, each from its start to its end, hidden or not.
  // Current after wait_all.
  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 protected:
  CommStats stats_;
};

// Collective over comm; in CUDA builds Kokkos must be initialised (it has chosen this rank's device).
std::unique_ptr<AsyncAllreduce> make_async_allreduce(MPI_Comm comm);

}  // namespace est
