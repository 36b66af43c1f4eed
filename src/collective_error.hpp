#pragma once
// An error every rank throws at the same point, after agreeing on it (parallel/failure_agreement.hpp): the job
// ends with one exit status on every rank and without an MPI abort, and only the rank that saw it reports it.
#include <stdexcept>
#include <string>

namespace est {

constexpr int kExitIoError = 74;  // EX_IOERR of sysexits.h: a file could not be written

class CollectiveError : public std::runtime_error {
 public:
  CollectiveError(const std::string& message, int status, bool reports)
      : std::runtime_error(message), status_(status), reports_(reports) {}
  int status() const { return status_; }
  bool reports() const { return reports_; }

 private:
  int status_;
  bool reports_;
};

}  // namespace est
