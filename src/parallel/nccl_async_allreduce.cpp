#include "parallel/nccl_async_allreduce.hpp"

#include "parallel/nccl_setup.hpp"

namespace est {

NcclAsyncAllreduce::NcclAsyncAllreduce(MPI_Comm comm, cudaStream_t compute) : compute_(compute) {
  nccl_ = nccl_comm_over(comm);
  nccl_check(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
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
    nccl_check(cudaEventCreate(&e), "cudaEventCreate");
    events_.push_back(e);
  }
  cudaEvent_t* ev = &events_[3 * size_t(started_)];
  nccl_check(cudaEventRecord(ev[0], compute_), "cudaEventRecord");
  nccl_check(cudaStreamWaitEvent(side_, ev[0], 0), "cudaStreamWaitEvent");
  nccl_check(cudaEventRecord(ev[1], side_), "cudaEventRecord");
  nccl_check(ncclAllReduce(data, data, size_t(n), ncclFloat, ncclSum, nccl_, side_), "ncclAllReduce");
  nccl_check(cudaEventRecord(ev[2], side_), "cudaEventRecord");
  ++started_;
  stats_.bytes += n * int64_t(sizeof(float));
  ++stats_.calls;
}

void NcclAsyncAllreduce::wait_all() {
  nccl_check(cudaStreamSynchronize(side_), "cudaStreamSynchronize");
  for (int i = 0; i < started_; ++i) {
    float ms = 0;
    nccl_check(cudaEventElapsedTime(&ms, events_[3 * size_t(i) + 1], events_[3 * size_t(i) + 2]), "cudaEventElapsedTime");
    stats_.seconds += 1e-3 * ms;
  }
  started_ = 0;
}

void NcclAsyncAllreduce::sum_now(float* data, int64_t n) {
  start(data, n);
  wait_all();
}

}  // namespace est
