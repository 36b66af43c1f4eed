#pragma once
// What every batch script est writes shares: quoting, and the checks of its launcher and time limit.
#include <regex>
#include <string>

#include "input_error.hpp"

namespace est {

// One word for bash and for sbatch's #SBATCH lines.
inline std::string shell_quote(const std::string& s) {
  if (!s.empty() && std::regex_match(s, std::regex("[A-Za-z0-9_./:=,+@%-]+"))) return s;
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline void check_launcher(const std::string& launcher) {
  if (launcher != "srun" && launcher != "mpirun")
    throw InputError("", "--launcher", "'" + launcher + "' is not a launcher (srun or mpirun)");
}

// Slurm's forms with hours: [D-]HH:MM:SS or HH:MM:SS.
inline void check_time_limit(const std::string& time) {
  if (!std::regex_match(time, std::regex("([0-9]+-)?[0-9]+:[0-5][0-9]:[0-5][0-9]")))
    throw InputError("", "--time", "'" + time + "' is not a time limit (HH:MM:SS or D-HH:MM:SS)");
}

}  // namespace est
