#include "parallel/nccl_communicator.hpp"

#include <algorithm>

#include "parallel/nccl_setup.hpp"

namespace est {

NcclCommunicator::NcclCommunicator(MPI_Comm comm, cudaStream_t stream) : comm_(comm), stream_(stream) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  nccl_ = nccl_comm_over(comm_);
}

// A destructor must not throw, so ncclCommDestroy's result is dropped.
NcclCommunicator::~NcclCommunicator() { ncclCommDestroy(nccl_); }

template <class F>
void NcclCommunicator::timed(int64_t bytes, F&& collective) {
  const double t0 = MPI_Wtime();
  collective();
  stats_.seconds += MPI_Wtime() - t0;
  stats_.bytes += bytes;
  ++stats_.calls;
}

void NcclCommunicator::allreduce_sum(float* data, int64_t n) {
  if (size_ == 1) return;
  // Timed by synchronising the stream before and after, as the MPI backend fences: the seconds are then the
  // collective's alone, waiting for the other ranks included, and current whenever stats() is read. Events would
  // avoid the host stall, but it costs little at one gradient all-reduce per step.
  nccl_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  timed(n * int64_t(sizeof(float)), [&] {
    nccl_check(ncclAllReduce(data, data, size_t(n), ncclFloat, ncclSum, nccl_, stream_), "ncclAllReduce");
    nccl_check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  });
}

// The host-memory collectives below are a few numbers each: MPI on the same group.

void NcclCommunicator::allreduce_sum(double* data, int64_t n) {
  if (size_ == 1) return;
  timed(n * int64_t(sizeof(double)), [&] { MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, MPI_SUM, comm_); });
}

void NcclCommunicator::allreduce_max(double* data, int64_t n) {
  if (size_ == 1) return;
  timed(n * int64_t(sizeof(double)), [&] { MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, MPI_MAX, comm_); });
}

void NcclCommunicator::allgather(const double* in, int64_t n, double* out) {
  if (size_ == 1) {
    std::copy(in, in + n, out);
    return;
  }
  timed(n * int64_t(sizeof(double)),
        [&] { MPI_Allgather(in, int(n), MPI_DOUBLE, out, int(n), MPI_DOUBLE, comm_); });
}

void NcclCommunicator::barrier() {
  if (size_ == 1) return;
  timed(0, [&] { MPI_Barrier(comm_); });
}

}  // namespace est
