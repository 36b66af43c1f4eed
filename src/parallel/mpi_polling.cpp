#include "parallel/mpi_polling.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

namespace est {

bool poll_until_done(MPI_Request& request, const std::atomic<bool>* hurry, const std::atomic<bool>* give_up) {
  using std::chrono::microseconds;
  const auto t0 = std::chrono::steady_clock::now();
  for (int done = 0;;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return true;
    if (give_up && *give_up) return false;
    const auto waited = std::chrono::duration_cast<microseconds>(std::chrono::steady_clock::now() - t0);
    if ((!hurry || !*hurry) && waited > microseconds(100))
      std::this_thread::sleep_for(std::clamp(waited / 16, microseconds(10), microseconds(1000)));
  }
}

}  // namespace est
