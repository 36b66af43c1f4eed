#include "parallel/mpi_communicator.hpp"

#include <stdexcept>

#include "parallel/mpi_polling.hpp"
#include "views.hpp"

namespace est {

template <class F>
void MpiCommunicator::timed(int64_t bytes, F&& collective) {
  // Kernels that produce the buffer may still be running on an asynchronous backend.
  Kokkos::fence();
  const double t0 = MPI_Wtime();
  collective();
  stats_.seconds += MPI_Wtime() - t0;
  stats_.bytes += bytes;
  ++stats_.calls;
}

int MpiCommunicator::rank() const {
  int r = 0;
  MPI_Comm_rank(comm_, &r);
  return r;
}

int MpiCommunicator::size() const {
  int s = 1;
  MPI_Comm_size(comm_, &s);
  return s;
}

// MPI counts are int: large buffers go in pieces.
namespace {
constexpr int64_t kChunk = int64_t(1) << 30;
}

void MpiCommunicator::allreduce_sum(float* data, int64_t n) {
  // MPI is not assumed to be CUDA-aware: device buffers go through NCCL (parallel/device_communicator.hpp).
  if (!kHostKernels) throw std::logic_error("MpiCommunicator: a float all-reduce on device memory");
  if (size() == 1) return;
  timed(n * int64_t(sizeof(float)), [&] {
    for (int64_t at = 0; at < n; at += kChunk)
      MPI_Allreduce(MPI_IN_PLACE, data + at, int(std::min(kChunk, n - at)), MPI_FLOAT, MPI_SUM, comm_);
  });
}

void MpiCommunicator::allreduce_sum(double* data, int64_t n) {
  if (size() == 1) return;
  timed(n * int64_t(sizeof(double)), [&] { MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, MPI_SUM, comm_); });
}

void MpiCommunicator::allreduce_max(double* data, int64_t n) {
  if (size() == 1) return;
  timed(n * int64_t(sizeof(double)), [&] { MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_DOUBLE, MPI_MAX, comm_); });
}

void MpiCommunicator::allgather(const double* in, int64_t n, double* out) {
  if (size() == 1) {
    std::copy(in, in + n, out);
    return;
  }
  timed(n * int64_t(sizeof(double)),
        [&] { MPI_Allgather(in, int(n), MPI_DOUBLE, out, int(n), MPI_DOUBLE, comm_); });
}

// Polled rather than MPI_Barrier's spin: the ranks that arrive first wait for a slower one, whose cores they may share.
void MpiCommunicator::barrier() {
  if (size() == 1) return;
  timed(0, [&] {
    MPI_Request request;
    MPI_Ibarrier(comm_, &request);
    poll_until_done(request);
  });
}

}  // namespace est
