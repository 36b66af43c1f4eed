#include "jobs/study_manifest.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "input_error.hpp"
#include "io/atomic_file.hpp"
#include "io/timestamp.hpp"

namespace est {
namespace {

namespace fs = std::filesystem;

constexpr int kFormatVersion = 1;

nlohmann::json variant_json(const StudyVariant& v) {
  return {{"name", v.name},   {"schedule", v.schedule}, {"set", v.set},
          {"compute_matched", v.compute_matched},       {"steps", v.steps},
          {"flops", v.flops}, {"flops_full", v.flops_full},
          {"saving", v.flops_full > 0 ? 1.0 - v.flops / v.flops_full : 0.0}};
}

nlohmann::json point_json(const StudyPoint& p) {
  return {{"name", p.name},          {"variant", p.variant},           {"seed", p.seed},
          {"steps", p.steps},        {"overrides", p.overrides},       {"output_dir", p.name},
          {"trace", p.name + "/trace.h5"}, {"summary", p.name + "/summary.json"}, {"log", p.name + ".log"},
          {"status", "pending"},     {"exit_status", nullptr}};
}

std::string manifest_path(const std::string& dir) { return (fs::path(dir) / "manifest.json").string(); }

// The points as the runs see them: a resumed study must be the same runs, whoever wrote the manifest.
nlohmann::json runs_of(const nlohmann::json& manifest) {
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& p : manifest.at("points")) runs.push_back({p.at("name"), p.at("overrides")});
  return runs;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Held while the manifest is read and rewritten.
class ManifestLock {
 public:
  explicit ManifestLock(const std::string& dir) : fd_(::open((fs::path(dir) / ".manifest.lock").c_str(), O_CREAT | O_RDWR, 0644)) {
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) throw InputError(dir, "manifest.json", "cannot lock the study");
  }
  ~ManifestLock() { ::close(fd_); }
  ManifestLock(const ManifestLock&) = delete;
  ManifestLock& operator=(const ManifestLock&) = delete;

 private:
  int fd_;
};

void write_manifest(const std::string& dir, const nlohmann::json& m) {
  write_text_atomic(manifest_path(dir), m.dump(2) + "\n");
}

}  // namespace

nlohmann::json read_study_manifest(const std::string& dir) {
  const std::string path = manifest_path(dir);
  if (!fs::exists(path)) throw InputError(path, "", "no such file (not a study directory)");
  nlohmann::json m = nlohmann::json::parse(read_text(path), nullptr, false);
  if (m.is_discarded() || !m.is_object()) throw InputError(path, "", "not valid JSON");
  if (m.value("kind", "") != kStudyKind) throw InputError(path, "kind", std::string("expected ") + kStudyKind);
  if (m.value("format_version", 0) != kFormatVersion) {
    throw InputError(path, "format_version", "not the supported " + std::to_string(kFormatVersion));
  }
  return m;
}

nlohmann::json study_manifest(const StudyPlan& plan, const std::string& runner, const StudyTools& tools) {
  nlohmann::json m = {{"kind", kStudyKind},       {"format_version", kFormatVersion}, {"spec", plan.spec},
                      {"config", "config.yaml"},  {"created", iso_utc_now()},          {"runner", runner},
                      {"workdir", tools.workdir}, {"baseline", plan.baseline},
                      {"seeds", plan.seeds},      {"variants", nlohmann::json::array()},
                      {"points", nlohmann::json::array()}};
  for (const auto& v : plan.variants) m["variants"].push_back(variant_json(v));
  for (const auto& p : plan.points) m["points"].push_back(point_json(p));
  return m;
}

nlohmann::json open_study(const std::string& dir, const StudyPlan& plan, const std::string& runner,
                          const StudyTools& tools, bool force) {
  nlohmann::json fresh = study_manifest(plan, runner, tools);
  if (fs::exists(manifest_path(dir))) {
    const nlohmann::json old = read_study_manifest(dir);
    const bool same = runs_of(old) == runs_of(fresh) && read_text((fs::path(dir) / "config.yaml").string()) ==
                                                             plan.config_yaml + "\n";
    if (same) return old;
    if (!force) {
      throw InputError(manifest_path(dir), "points",
                       "holds a different study (other points, overrides or config): use another --out, or --force "
                       "to replace it");
    }
    fs::remove_all(dir);
  } else if (fs::exists(dir) && !(fs::is_directory(dir) && fs::is_empty(dir))) {
    throw InputError("", "--out", dir + " exists and is not an empty directory or a study: not writing into it");
  }
  fs::create_directories(dir);
  write_text_atomic((fs::path(dir) / "config.yaml").string(), plan.config_yaml + "\n");
  write_manifest(dir, fresh);
  return fresh;
}

void record_point(const std::string& dir, size_t index, const std::string& status, int exit_status) {
  const ManifestLock lock(dir);
  nlohmann::json m = read_study_manifest(dir);
  auto& p = m.at("points").at(index);
  p["status"] = status;
  p["exit_status"] = status == "failed" ? nlohmann::json(exit_status) : nlohmann::json();
  write_manifest(dir, m);
}

bool point_finished(const std::string& dir, const nlohmann::json& point) {
  return fs::exists(fs::path(dir) / point.at("summary").get<std::string>());
}

}  // namespace est
