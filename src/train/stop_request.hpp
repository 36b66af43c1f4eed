#pragma once
// Stopping on a signal: Slurm sends SIGUSR1 before a job's time limit (sbatch --signal) and SIGTERM at it. While
// a StopRequest is alive either signal only sets a flag; the trainer reads it at the next step boundary, agrees on
// it with every rank (the checkpoint write is collective), checkpoints and exits with kExitResumable.
#include <csignal>

namespace est {

// sysexits' EX_TEMPFAIL: the run stopped cleanly with a checkpoint and continues with --resume auto.
constexpr int kExitResumable = 75;

class StopRequest {
 public:
  StopRequest();  // installs the handlers
  ~StopRequest();  // restores the previous ones
  StopRequest(const StopRequest&) = delete;
  StopRequest& operator=(const StopRequest&) = delete;

  // The signal received so far (0: none).
  static int signal();

 private:
  struct sigaction old_usr1_, old_term_;
};

}  // namespace est
