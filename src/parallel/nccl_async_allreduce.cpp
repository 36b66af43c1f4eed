#include "parallel/nccl_async_allreduce.hpp"

#include <stdexcept>
#include <string>

namespace est {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string(what) + ": " + ncclGetErrorString(r));
}

}  // namespace

NcclAsyncAllreduce::NcclAsyncAllreduce(MPI_Comm comm, cudaStream_t compute) : compute_(compute) {
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
NcclAsyncAllreduce::~NcclAsyncAllreduce() {
  if (started_ > 0)
    ncclCommAbort(nccl_);
  else
    ncclCommDestroy(nccl_);
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
  cudaStreamDestroy(side_);
}

void NcclAsyncAllreduce::start(float* data, int64_t n) {
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

void NcclAsyncAllreduce::wait_all() {
  check(cudaStreamSynchronize(side_), "cudaStreamSynchronize");
  for (int i = 0; i < started_; ++i) {
    float ms = 0;
    check(cudaEventElapsedTime(&ms, events_[3 * size_t(i) + 1], events_[3 * size_t(i) + 2]), "cudaEventElapsedTime");
    stats_.seconds += 1e-3 * ms;
  }
  started_ = 0;
}

void NcclAsyncAllreduce::sum_now(float* data, int64_t n) {
  start(data, n);
  wait_all();
}

}  // namespace est
