// A scaling study on disk: the scripts are valid bash and carry each point's nodes, ranks and batch; the manifest
// matches the plan; bad input and a non-empty out directory leave nothing written.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "input_error.hpp"
#include "jobs/scaling_study.hpp"
#include "sim/simulation.hpp"
#include "test_util.hpp"

namespace est {
namespace {

namespace fs = std::filesystem;

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Study {
  test::TempDir tmp;
  ScalingStudyRequest request;
  StudyTools tools{"/opt/est/bin/est", "/opt/est/jobs/launch", "/work"};

  Study() {
    std::ofstream(tmp.file("study.yaml")) << "model: {n_layer: 2, n_head: 4, n_embd: 32, seq_len: 16}\n"
                                             "data: {train: data/train_*.bin}\n"
                                             "train: {batch_size: 16}\n";
    request.config_path = tmp.file("study.yaml");
    request.out_dir = tmp.file("study");
    request.nodes = "1,2,4";
    request.mode = "strong";
    request.ranks_per_node = 2;
  }
  nlohmann::json write() { return write_scaling_study(request, tools); }
  std::string file(const std::string& name) const { return request.out_dir + "/" + name; }
};

std::string error_key(Study& s) {
  try {
    s.write();
  } catch (const InputError& e) {
    return e.key();
  }
  return "";
}

TEST(ScalingStudy, WritesTheConfigAScriptPerPointAndTheManifest) {
  Study s;
  s.request.overrides = {"parallel.tp=2"};
  const auto manifest = s.write();
  EXPECT_EQ(manifest, nlohmann::json::parse(read(s.file("manifest.json"))));
  EXPECT_EQ(manifest["kind"], "est-scaling-study");
  EXPECT_EQ(manifest["tp"], 2);
  EXPECT_NE(read(s.file("config.yaml")).find("tp: 2"), std::string::npos);  // the effective config, --set applied
  ASSERT_EQ(manifest["points"].size(), 3u);
  for (const auto& p : manifest["points"]) {
    const int nodes = p["nodes"];
    const std::string name = "strong-n" + std::to_string(nodes);
    EXPECT_EQ(p["ranks"], 2 * nodes);
    EXPECT_EQ(p["dp"], nodes);  // 2 ranks per node, tp 2
    EXPECT_EQ(p["global_batch"], 16);
    EXPECT_EQ(p["script"], name + ".sbatch");
    EXPECT_EQ(p["trace"], name + "/trace.h5");
    EXPECT_TRUE(p["simulated"].is_null());
    const std::string script = s.file(p["script"]);
    EXPECT_EQ(std::system(("bash -n " + script).c_str()), 0) << script;
    const std::string text = read(script);
    for (const std::string& expected :
         {"#SBATCH --nodes=" + std::to_string(nodes) + "\n", std::string("#SBATCH --ntasks-per-node=2\n"),
          std::string("#SBATCH --chdir=/work\n"), std::string("exec /opt/est/jobs/launch ") + s.file("config.yaml"),
          std::string("--set train.batch_size=16 "), std::string("--set parallel.tp=2 "),
          "--set output.dir=" + s.file(name) + "\n"})
      EXPECT_NE(text.find(expected), std::string::npos) << expected << " not in\n" << text;
  }
}

TEST(ScalingStudy, WeakScalingGrowsTheBatchWithTheNodesAndStrongKeepsIt) {
  Study strong, weak;
  weak.request.mode = "weak";
  const auto a = strong.write(), b = weak.write();
  for (size_t i = 0; i < 3; ++i) {
    const int dp = b["points"][i]["dp"];
    EXPECT_EQ(a["points"][i]["global_batch"], 16);
    EXPECT_EQ(b["points"][i]["global_batch"], 8 * dp);  // 16 over the 2 ranks of one node: 8 per rank
    EXPECT_EQ(b["points"][i]["per_rank_batch"], 8.0);
    const std::string script = read(weak.file(b["points"][i]["script"]));
    EXPECT_NE(script.find("--set train.batch_size=" + std::to_string(8 * dp) + " "), std::string::npos);
  }
}

TEST(ScalingStudy, RefusesANonEmptyOutDirectoryUnlessForcedOverAnEarlierStudy) {
  Study s;
  fs::create_directories(s.request.out_dir);
  std::ofstream(s.file("notes.txt")) << "mine\n";
  EXPECT_EQ(error_key(s), "--out");
  s.request.force = true;
  EXPECT_EQ(error_key(s), "--out");  // not a study: --force does not wipe it
  EXPECT_EQ(read(s.file("notes.txt")), "mine\n");
  EXPECT_FALSE(fs::exists(s.file("manifest.json")));

  fs::remove(s.file("notes.txt"));
  s.request.force = false;
  s.write();  // an empty directory is fine
  s.request.nodes = "2";
  EXPECT_EQ(error_key(s), "--out");
  s.request.force = true;
  s.write();
  EXPECT_TRUE(fs::exists(s.file("strong-n2.sbatch")));
  EXPECT_FALSE(fs::exists(s.file("strong-n1.sbatch")));  // replaced, not merged
}

TEST(ScalingStudy, WithAClusterEachPointCarriesItsSimulation) {
  Study s;
  s.request.cluster_path = EST_SOURCE_DIR "/jobs/clusters/h100-ib-ndr.yaml";
  const auto manifest = s.write();
  EXPECT_EQ(manifest["cluster"]["name"], read_cluster(s.request.cluster_path).name);
  const Config cfg = load_config(s.request.config_path);
  ScalingRequest plan;
  plan.nodes = {1, 2, 4};
  plan.ranks_per_node = 2;
  const auto points = plan_scaling(cfg, plan);
  ASSERT_EQ(manifest["points"].size(), points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& simulated = manifest["points"][i]["simulated"];
    EXPECT_EQ(simulated, simulate_point(cfg, read_cluster(s.request.cluster_path), points[i]));
    EXPECT_GT(simulated["est"]["step_seconds"].get<double>(), 0);
  }
}

TEST(ScalingStudy, BadInputIsOneErrorNamingTheOptionAndWritesNothing) {
  const std::pair<std::string, std::function<void(ScalingStudyRequest&)>> cases[] = {
      {"--mode", [](auto& r) { r.mode = "medium"; }},
      {"--nodes", [](auto& r) { r.nodes = "2,1"; }},
      {"--nodes", [](auto& r) { r.nodes = "0"; }},
      {"--launcher", [](auto& r) { r.launcher = "aprun"; }},
      {"--time", [](auto& r) { r.time_limit = "90"; }},
      {"train.batch_size", [](auto& r) { r.nodes = "1,16"; }},  // 16 sequences, 32 ranks
      {"model.n_layers", [](auto& r) { r.overrides = {"model.n_layers=3"}; }},
      {"file", [](auto& r) { r.cluster_path = "/nonexistent/cluster.yaml"; }},
  };
  for (const auto& [key, spoil] : cases) {
    Study s;
    spoil(s.request);
    EXPECT_EQ(error_key(s), key);
    EXPECT_EQ(std::distance(fs::directory_iterator(s.tmp.path()), fs::directory_iterator()), 1) << key;  // study.yaml
  }
}

}  // namespace
}  // namespace est
