#include "cli/exit_status.hpp"

#include <mpi.h>

#include <climits>
#include <cstdio>

#include "collective_error.hpp"
#include "input_error.hpp"
#include "parallel/failure_agreement.hpp"
#include "train/step.hpp"

namespace est::cli {
namespace {

// Runs f; an exception becomes its message and exit status. A CollectiveError that another rank reports leaves
// the message empty.
int attempt(const std::function<void()>& f, std::string& message) {
  try {
    f();
    return 0;
  } catch (const CollectiveError& e) {
    if (e.reports()) message = e.what();
    return e.status();
  } catch (const std::exception& e) {
    message = e.what();
    return exit_status_of(std::current_exception());
  }
}

}  // namespace

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

void report(const std::string& message) { std::fprintf(stderr, "est: error: %s\n", message.c_str()); }

int agreed(const std::function<void()>& f) {
  std::string message;
  const int status = attempt(f, message);
  // MINLOC over (rank if failed with a message, status): the lowest failing rank that reports, and its status.
  int mine[2] = {status && !message.empty() ? world_rank() : INT_MAX, status}, first[2];
  MPI_Allreduce(mine, first, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD);
  if (first[0] == INT_MAX) return status;
  if (first[0] == world_rank()) report(message);
  return first[1];
}

int or_abort(const std::function<void()>& f) {
  std::string message;
  int status = 1;
  try {
    f();
    return 0;
  } catch (const TrainingDiverged& e) {
    if (world_rank() == 0) report(e.what());
    return 1;
  } catch (const CollectiveError& e) {
    if (e.reports()) report(e.what());
    return e.status();
  } catch (const InputError& e) {
    message = e.what();
    status = kExitBadInput;
  } catch (const std::exception& e) {
    message = e.what();
  }
  report(message);
  if (world_size() > 1) MPI_Abort(MPI_COMM_WORLD, status);
  return status;
}

}  // namespace est::cli
