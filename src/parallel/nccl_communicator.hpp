#pragma once
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include "parallel/communicator.hpp"

namespace est {

// NCCL all-reduce of device float buffers on the stream the kernels run on (in a Kokkos-CUDA build,
// Kokkos::DefaultExecutionSpace().cuda_stream()); the small host-side collectives go through MPI on the same group.
// Construction is collective over comm and uses the current CUDA device: set it (cudaSetDevice) first.
class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(MPI_Comm comm, cudaStream_t stream);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(float* data, int64_t n) override;
  void allreduce_sum(double* data, int64_t n) override;
  void allreduce_max(double* data, int64_t n) override;
  void allgather(const double* in, int64_t n, double* out) override;
  void barrier() override;

 private:
  template <class F>
  void timed(int64_t bytes, F&& collective);
  MPI_Comm comm_;
  cudaStream_t stream_;
  ncclComm_t nccl_ = nullptr;
  int rank_ = 0, size_ = 1;
};

}  // namespace est
