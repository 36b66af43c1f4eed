#include "jobs/study_runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "jobs/study_manifest.hpp"
#include "train/stop_request.hpp"

namespace est {
namespace {

namespace fs = std::filesystem;

volatile sig_atomic_t g_child = 0;
volatile sig_atomic_t g_stop = 0;

void on_stop_signal(int) {
  g_stop = 1;
  if (g_child > 0) ::kill(pid_t(g_child), SIGTERM);
}

// Installed while the study runs; the previous handlers come back after it.
class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~StopSignals() {
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  static constexpr std::array<int, 3> kSignals = {SIGINT, SIGTERM, SIGUSR1};
  std::array<struct sigaction, 3> old_{};
};

std::vector<std::string> train_args(const std::string& est, const nlohmann::json& point, const std::string& dir) {
  std::vector<std::string> args = {est, "train", "--config", (fs::path(dir) / "config.yaml").string()};
  for (const auto& o : point.at("overrides")) args.insert(args.end(), {"--set", o.get<std::string>()});
  args.insert(args.end(), {"--resume", "auto"});
  return args;
}

// In the child: its own process group (a terminal's Ctrl-C reaches the runner, which asks the point to stop
// cleanly), SIGTERM if the runner dies, the log as stdout and stderr.
[[noreturn]] void exec_point(const std::vector<std::string>& args, const std::string& log, const std::string& workdir) {
  ::setpgid(0, 0);
#ifdef __linux__
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0 || ::chdir(workdir.c_str()) != 0) _exit(127);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  _exit(127);
}

// The child's exit status; a child ended by a signal counts as stopped.
int run_point(const std::vector<std::string>& args, const std::string& log, const std::string& workdir) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("cannot start a point: fork: ") + std::strerror(errno));
  if (pid == 0) exec_point(args, log, workdir);
  g_child = pid;
  if (g_stop) ::kill(pid, SIGTERM);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : kExitResumable;
}

}  // namespace

StudyOutcome run_study_locally(const std::string& dir, const std::string& est_binary, std::FILE* out) {
  const StopSignals signals;
  g_stop = 0;
  StudyOutcome outcome;
  const nlohmann::json m = read_study_manifest(dir);
  const auto& points = m.at("points");
  for (size_t i = 0; i < points.size() && !g_stop; ++i) {
    const auto& p = points[i];
    const std::string name = p.at("name");
    if (point_finished(dir, p)) {
      if (p.at("status") != "done") record_point(dir, i, "done");
      ++outcome.skipped;
      continue;
    }
    record_point(dir, i, "running");
    std::fprintf(out, "est study: [%zu/%zu] %s\n", i + 1, points.size(), name.c_str());
    std::fflush(out);
    const auto start = std::chrono::steady_clock::now();
    const int rc = run_point(train_args(est_binary, p, dir), (fs::path(dir) / p.at("log").get<std::string>()).string(),
                             m.at("workdir"));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rc == 0 && point_finished(dir, p)) {
      record_point(dir, i, "done");
      ++outcome.done;
      std::fprintf(out, "est study: %s done in %.0f s\n", name.c_str(), seconds);
    } else if (rc == kExitResumable || g_stop) {
      record_point(dir, i, "pending");
      outcome.interrupted = true;
      std::fprintf(out, "est study: %s stopped with a checkpoint; run the study again to resume it\n", name.c_str());
    } else {
      record_point(dir, i, "failed", rc);
      ++outcome.failed;
      std::fprintf(out, "est study: %s failed (exit status %d): see %s/%s\n", name.c_str(), rc, dir.c_str(),
                   p.at("log").get<std::string>().c_str());
    }
    std::fflush(out);
  }
  outcome.interrupted = outcome.interrupted || g_stop;
  return outcome;
}

}  // namespace est
