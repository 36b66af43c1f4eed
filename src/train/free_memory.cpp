#include "train/free_memory.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace est {

namespace {

constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();

// The first number in a file ("max" and unreadable files: none).
std::optional<int64_t> number_in(const std::filesystem::path& file) {
  std::ifstream in(file);
  int64_t n = 0;
  if (in >> n) return n;
  return std::nullopt;
}

int64_t mem_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return kUnlimited;
}

// The room below the limits of this process's cgroup and of every cgroup above it (v2, or v1's memory
// controller): a job's limit sits on the job's cgroup, the process in a step's below it.
int64_t cgroup_room() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  int64_t room = kUnlimited;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, controllers, path;
    std::getline(fields, id, ':');
    std::getline(fields, controllers, ':');
    std::getline(fields, path);
    const bool v2 = controllers.empty();
    if (!v2 && controllers.find("memory") == std::string::npos) continue;
    const std::filesystem::path root = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
    const char* limit = v2 ? "memory.max" : "memory.limit_in_bytes";
    const char* usage = v2 ? "memory.current" : "memory.usage_in_bytes";
    for (std::filesystem::path p = path; !p.empty(); p = p.parent_path()) {
      const auto max = number_in(root / p.relative_path() / limit);
      const auto used = number_in(root / p.relative_path() / usage);
      if (max && used) room = std::min(room, std::max<int64_t>(0, *max - *used));
      if (p == p.root_path()) break;
    }
  }
  return room;
}

}  // namespace

int64_t free_host_memory() { return std::min(mem_available(), cgroup_room()); }

int64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

}  // namespace est
