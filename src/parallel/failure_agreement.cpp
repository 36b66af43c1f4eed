#include "parallel/failure_agreement.hpp"

#include <climits>
#include <string>

#include "collective_error.hpp"
#include "input_error.hpp"
#include "io/io_error.hpp"

namespace est {

namespace {

std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

}  // namespace

int exit_status_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const CollectiveError& e) {
    return e.status();
  } catch (const InputError&) {
    return 2;
  } catch (const IoError&) {
    return kExitIoError;
  } catch (...) {
    return 1;
  }
}

void raise_if_any_failed(MPI_Comm comm, const std::exception_ptr& failure) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  // MINLOC over (rank if failed, status): the lowest failing rank and its status.
  int mine[2] = {failure ? rank : INT_MAX, failure ? exit_status_of(failure) : 0}, first[2];
  MPI_Allreduce(mine, first, 1, MPI_2INT, MPI_MINLOC, comm);
  if (first[0] == INT_MAX) return;
  const bool reports = first[0] == rank;
  throw CollectiveError(reports ? message_of(failure) : "another rank failed", first[1], reports);
}

}  // namespace est
