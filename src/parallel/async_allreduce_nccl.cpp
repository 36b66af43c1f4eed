// CUDA builds: the sums run on a side stream with an NCCL communicator of their own. Each waits, by an event, for
// the kernels issued so far on the stream the Kokkos kernels and cuBLAS run on, so the backward pass goes on while
// the bucket before travels; a pair of events around each times it.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <Kokkos_Core.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel/async_allreduce.hpp"

namespace est {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string(what) + ": " + ncclGetErrorString(r));
}

class NcclAsyncAllreduce : public AsyncAllreduce {
 public:
  explicit NcclAsyncAllreduce(MPI_Comm comm) : compute_(Kokkos::DefaultExecutionSpace().cuda_stream()) {
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    ncclUniqueId id{};
    if (rank == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    MPI_Bcast(&id, int(sizeof(id)), MPI_BYTE, 0, comm);
    check(ncclCommInitRank(&nccl_, size, id, rank), "ncclCommInitRank (each rank of a group needs a GPU of its own)");
    check(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  }

  // A sum still in flight belongs to a step an error interrupted; its partners may never join it, so the
  // communicator is aborted rather than destroyed (which would wait for it). Destructors must not throw.
  ~NcclAsyncAllreduce() override {
    if (started_ > 0)
      ncclCommAbort(nccl_);
    else
      ncclCommDestroy(nccl_);
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    cudaStreamDestroy(side_);
  }

  void start(float* data, int64_t n) override {
    // Three events per sum: the bucket written on the compute stream, and the sum's start and end on the side one.
    while (events_.size() < 3 * size_t(started_ + 1)) {
      cudaEvent_t e;
      check(cudaEventCreate(&e), "cudaEventCreate");
      events_.push_back(e);
    }
    cudaEvent_t* ev = &events_[3 * size_t(started_)];
    check(cudaEventRecord(ev[0], compute_), "cudaEventRecord");
    check(cudaStreamWaitEvent(side_, ev[0], 0), "cudaStreamWaitEvent");
    check(cudaEventRecord(ev[1], side_), "cudaEventRecord");
    check(ncclAllReduce(data, data, size_t(n), ncclFloat, ncclSum, nccl_, side_), "ncclAllReduce");
    check(cudaEventRecord(ev[2], side_), "cudaEventRecord");
    ++started_;
    stats_.bytes += n * int64_t(sizeof(float));
    ++stats_.calls;
  }

  void wait_all() override {
    check(cudaStreamSynchronize(side_), "cudaStreamSynchronize");
    for (int i = 0; i < started_; ++i) {
      float ms = 0;
      check(cudaEventElapsedTime(&ms, events_[3 * size_t(i) + 1], events_[3 * size_t(i) + 2]), "cudaEventElapsedTime");
      stats_.seconds += 1e-3 * ms;
    }
    started_ = 0;
  }

  void sum_now(float* data, int64_t n) override {
    start(data, n);
    wait_all();
  }

  bool overlaps() const override { return true; }

 private:
  cudaStream_t compute_, side_ = nullptr;
  ncclComm_t nccl_ = nullptr;
  std::vector<cudaEvent_t> events_;
  int started_ = 0;  // since the last wait_all
};

}  // namespace

std::unique_ptr<AsyncAllreduce> make_async_allreduce(MPI_Comm comm) { return std::make_unique<NcclAsyncAllreduce>(comm); }

}  // namespace est
