// CPU builds: the sums run on a communication thread, one MPI_Iallreduce at a time on a duplicate of the group's
// communicator. Open MPI progresses a non-blocking collective only inside MPI calls, so the thread polls it; it
// sleeps between polls, as a blocking wait would spin on a core the ranks' compute threads may need.
#include <Kokkos_Core.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "parallel/async_allreduce.hpp"
#include "views.hpp"

namespace est {
namespace {

using Clock = std::chrono::steady_clock;

class MpiAsyncAllreduce : public AsyncAllreduce {
 public:
  explicit MpiAsyncAllreduce(MPI_Comm comm) {
    if (!kHostKernels) throw std::logic_error("MpiAsyncAllreduce: a float all-reduce on device memory");
    MPI_Comm_dup(comm, &comm_);
    int provided = MPI_THREAD_SINGLE;
    MPI_Query_thread(&provided);
    if (provided == MPI_THREAD_MULTIPLE) thread_ = std::thread([this] { serve(); });
  }

  ~MpiAsyncAllreduce() override {
    if (thread_.joinable()) {
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
      }
      ready_.notify_all();
      thread_.join();
    }
    MPI_Comm_free(&comm_);
  }

  void start(float* data, int64_t n) override {
    Kokkos::fence();  // the kernels that write the bucket
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back({data, n});
      ++pending_;
      stats_.bytes += n * int64_t(sizeof(float));
      ++stats_.calls;
    }
    ready_.notify_all();
  }

  void wait_all() override {
    if (!thread_.joinable()) {
      for (; !queue_.empty(); queue_.pop_front()) stats_.seconds += reduce(queue_.front());
      pending_ = 0;
      return;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
  }

  bool overlaps() const override { return thread_.joinable(); }

 private:
  struct Bucket {
    float* data;
    int64_t n;
  };

  // The communication thread: the queue's sums in order, until the owner goes. One left pending then belongs to
  // a step an error interrupted, whose partners may never join it, so it is abandoned rather than waited for.
  void serve() {
    for (;;) {
      Bucket b{};
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        b = queue_.front();
        queue_.pop_front();
      }
      const double seconds = reduce(b);
      if (seconds < 0) return;
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        stats_.seconds += seconds;
        --pending_;
      }
      done_.notify_all();
    }
  }

  // One sum (MPI counts are int: a large bucket in pieces); its seconds, or -1 when stopping cut it short.
  double reduce(const Bucket& b) {
    constexpr int64_t kChunk = int64_t(1) << 30;
    const auto t0 = Clock::now();
    for (int64_t at = 0; at < b.n; at += kChunk) {
      MPI_Request request;
      MPI_Iallreduce(MPI_IN_PLACE, b.data + at, int(std::min(kChunk, b.n - at)), MPI_FLOAT, MPI_SUM, comm_, &request);
      if (!poll(request, stopping_)) return -1;
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }

  // Tests back to back for the first 100 us (a small bucket is done by then), then sleeps a sixteenth of the time
  // waited so far between tests, from 10 us to 1 ms: a round of the collective (which advances only inside a test)
  // ends at most ~6% later than it could, and a sum that waits long for a partner still in its backward pass
  // costs the cores about a thousand wake-ups a second.
  static bool poll(MPI_Request& request, const std::atomic<bool>& stopping) {
    using std::chrono::microseconds;
    const auto t0 = Clock::now();
    for (int done = 0;;) {
      MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      if (done) return true;
      if (stopping) return false;
      const auto waited = std::chrono::duration_cast<microseconds>(Clock::now() - t0);
      if (waited > microseconds(100)) std::this_thread::sleep_for(std::clamp(waited / 16, microseconds(10), microseconds(1000)));
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::mutex mutex_;
  std::condition_variable ready_, done_;
  std::deque<Bucket> queue_;
  int64_t pending_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace

std::unique_ptr<AsyncAllreduce> make_async_allreduce(MPI_Comm comm) { return std::make_unique<MpiAsyncAllreduce>(comm); }

}  // namespace est
