// CPU builds: the sums run one MPI_Iallreduce at a time, in the order started, on a duplicate of the group's
// communicator: on a communication thread while the caller computes, and in the caller once it waits. The thread
// polls each sum (parallel/mpi_polling.hpp), with pauses while the caller computes and back to back once it waits.
#include <Kokkos_Core.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>
#include <thread>

#include "parallel/async_allreduce.hpp"
#include "parallel/mpi_polling.hpp"
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
    if (provided == MPI_THREAD_MULTIPLE) {
      thread_ = std::thread([this] { serve(); });
      run_on_idle_cycles(true);
    }
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

  // The caller has nothing left to compute: what the thread still runs it polls without pausing, and once the
  // thread is between sums the caller runs the rest itself, in order, sparing a hand-off per bucket. Without the
  // thread (no MPI_THREAD_MULTIPLE) that is every sum.
  void wait_all() override {
    std::unique_lock<std::mutex> lock(mutex_);
    hurry_ = true;
    run_on_idle_cycles(false);
    while (pending_ > 0) {
      if (busy_ || queue_.empty()) {
        done_.wait(lock);
        continue;
      }
      std::deque<Bucket> rest;
      rest.swap(queue_);
      busy_ = true;
      lock.unlock();
      double seconds = 0;
      for (const Bucket& b : rest) seconds += reduce(b);
      lock.lock();
      stats_.seconds += seconds;
      pending_ -= int64_t(rest.size());
      busy_ = false;
    }
    hurry_ = false;
    run_on_idle_cycles(true);
  }

  void sum_now(float* data, int64_t n) override {
    Kokkos::fence();
    hurry_ = true;
    stats_.seconds += reduce({data, n});
    hurry_ = false;
    stats_.bytes += n * int64_t(sizeof(float));
    ++stats_.calls;
  }

  bool overlaps() const override { return thread_.joinable(); }

 private:
  struct Bucket {
    float* data;
    int64_t n;
  };

  // The sums' memory traffic and additions take a core like the compute does: where the ranks' compute threads
  // fill the cores, a thread of normal priority would take turns with them, preempting them at every poll. While
  // the caller computes the thread runs only on cycles the compute leaves idle (a rank that waits, spare cores).
  // Once the caller waits the thread gets normal priority back: on cores that other work fills (oversubscribed
  // ranks, a shared node) an idle-priority thread would barely run, and the sum it holds would barely progress.
  // Linux lets a process lift a thread out of SCHED_IDLE only with CAP_SYS_NICE or an RLIMIT_NICE of 20: without
  // them the thread keeps normal priority throughout.
  void run_on_idle_cycles(bool idle) {
#ifdef SCHED_IDLE
    static const bool liftable = [] {
      rlimit nice{};
      if (geteuid() == 0) return true;
      return getrlimit(RLIMIT_NICE, &nice) == 0 && (nice.rlim_cur == RLIM_INFINITY || nice.rlim_cur >= 20);
    }();
    if (!liftable || !thread_.joinable()) return;
    const sched_param param{};
    pthread_setschedparam(thread_.native_handle(), idle ? SCHED_IDLE : SCHED_OTHER, &param);
#endif
  }

  // The communication thread: the queue's sums in order, one at a time (busy_: a sum is being run, by it or by
  // wait_all's caller), until the owner goes. One left pending then belongs to
  // a step an error interrupted, whose partners may never join it, so it is abandoned rather than waited for.
  void serve() {
    for (;;) {
      Bucket b{};
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || (!busy_ && !queue_.empty()); });
        if (stopping_) return;
        b = queue_.front();
        queue_.pop_front();
        busy_ = true;
      }
      const double seconds = reduce(b);
      if (seconds < 0) return;
      {
        const std::lock_guard<std::mutex> lock(mutex_);
        stats_.seconds += seconds;
        --pending_;
        busy_ = false;
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
      if (!poll_until_done(request, &hurry_, &stopping_)) return -1;
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::mutex mutex_;
  std::condition_variable ready_, done_;
  std::deque<Bucket> queue_;
  int64_t pending_ = 0;  // started and not complete
  bool busy_ = false;
  std::atomic<bool> stopping_{false}, hurry_{false};
  std::thread thread_;
};

}  // namespace

std::unique_ptr<AsyncAllreduce> make_async_allreduce(MPI_Comm comm) { return std::make_unique<MpiAsyncAllreduce>(comm); }

}  // namespace est
