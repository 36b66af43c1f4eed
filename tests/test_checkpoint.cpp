// HDF5 checkpoints on one rank: every tensor and the training state round-trip exactly; a damaged or foreign
// file is one InputError naming it.
#include <hdf5.h>
#include <mpi.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

#include "input_error.hpp"
#include "io/checkpoint.hpp"
#include "model/gpt2.hpp"
#include "io/hdf5_handle.hpp"
#include "test_util.hpp"
#include "train/step.hpp"

namespace est {
namespace {

ModelShape small() { return test::small_shape(2, 4, 16); }

using test::TempDir;

// A model and optimizer a few steps in, so that params, m and v all differ from their start.
struct Trained {
  GPT2 model{small(), 2, 4};
  AdamW optimizer{model.layout(), {}};
  Trained() {
    model.init_random(3);
    std::vector<int> tok(8), tgt(8);
    for (int i = 0; i < 8; ++i) tok[i] = (i * 13) % 128, tgt[i] = (i * 7 + 1) % 128;
    model.set_batch(tok.data(), tgt.data());
    for (int i = 0; i < 3; ++i) train_step(model, optimizer, 1e-2f, 1.0);
  }
};

TrainingState some_state() {
  TrainingState s;
  s.step = 3;
  s.stage = 1;
  s.est_seed = 99;
  s.data_seed = 7;
  s.strata = 4;
  s.data = {1, 0, 5};
  s.balancer = {1.5, 2.5, 3.5};
  s.config_yaml = "model: {n_layer: 2}\n";
  s.schedule_yaml = "stages: []\n";
  s.flops_so_far = 1.25e9;
  s.train_seconds = 4.5;
  return s;
}

TEST(Checkpoint, EveryTensorAndTheStateRoundTripExactly) {
  TempDir dir;
  ProcessGrid grid(MPI_COMM_SELF, 1);
  Trained a;
  const std::string path = checkpoint_path(dir.path(), 3);
  EXPECT_TRUE(save_checkpoint(path, a.model, a.optimizer, some_state(), grid)) << "collective I/O throughout";
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_TRUE(verify_checkpoint(path).empty());

  GPT2 model(small(), 2, 4);
  AdamW optimizer(model.layout(), {});
  const TrainingState s = load_checkpoint(path, model, optimizer, grid);
  EXPECT_EQ(test::to_host(model.params()), test::to_host(a.model.params()));
  EXPECT_EQ(test::to_host(optimizer.m()), test::to_host(a.optimizer.m()));
  EXPECT_EQ(test::to_host(optimizer.v()), test::to_host(a.optimizer.v()));
  EXPECT_EQ(optimizer.steps_taken(), 3);
  const TrainingState want = some_state();
  EXPECT_EQ(s.step, want.step);
  EXPECT_EQ(s.stage, want.stage);
  EXPECT_EQ(s.est_seed, want.est_seed);
  EXPECT_EQ(s.data_seed, want.data_seed);
  EXPECT_EQ(s.strata, want.strata);
  EXPECT_EQ(s.data.epoch, 1);
  EXPECT_EQ(s.data.window, 5);
  EXPECT_EQ(s.balancer, want.balancer);
  EXPECT_EQ(s.config_yaml, want.config_yaml);
  EXPECT_EQ(s.schedule_yaml, want.schedule_yaml);
  EXPECT_EQ(s.flops_so_far, want.flops_so_far);

  const auto d = describe_checkpoint(path);
  EXPECT_EQ(d["step"], 3);
  EXPECT_EQ(d["datasets"].size(), 48u);
  EXPECT_EQ(d["shape"]["n_layer"], 2);
}

TEST(Checkpoint, ListsNewestFirstAndKeepsNoPartialFile) {
  TempDir dir;
  ProcessGrid grid(MPI_COMM_SELF, 1);
  Trained a;
  for (int step : {2, 10, 4}) save_checkpoint(checkpoint_path(dir.path(), step), a.model, a.optimizer, some_state(), grid);
  std::ofstream(dir.path() + "/ckpt_00000099.h5.tmp") << "partial";
  const auto all = list_checkpoints(dir.path());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], checkpoint_path(dir.path(), 10));
  EXPECT_EQ(all[2], checkpoint_path(dir.path(), 2));
}

void expect_bad(const std::string& path, const std::string& key) {
  ProcessGrid grid(MPI_COMM_SELF, 1);
  GPT2 model(small(), 2, 4);
  AdamW optimizer(model.layout(), {});
  try {
    load_checkpoint(path, model, optimizer, grid);
    ADD_FAILURE() << "accepted " << path;
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), path);
    EXPECT_EQ(e.key(), key) << e.what();
  }
}

TEST(Checkpoint, BadFilesAreOneInputError) {
  TempDir dir;
  expect_bad(dir.path() + "/none.h5", "file");
  std::ofstream(dir.path() + "/text.h5") << "not HDF5 at all";
  expect_bad(dir.path() + "/text.h5", "file");

  ProcessGrid grid(MPI_COMM_SELF, 1);
  Trained a;
  const std::string good = checkpoint_path(dir.path(), 3);
  save_checkpoint(good, a.model, a.optimizer, some_state(), grid);
  // Truncated to half: unreadable as HDF5, or its data cut off.
  const std::string cut = dir.path() + "/cut.h5";
  std::filesystem::copy_file(good, cut);
  std::filesystem::resize_file(cut, std::filesystem::file_size(good) / 2);
  ProcessGrid g2(MPI_COMM_SELF, 1);
  GPT2 model(small(), 2, 4);
  AdamW optimizer(model.layout(), {});
  EXPECT_THROW(load_checkpoint(cut, model, optimizer, g2), InputError);

  // Another model shape: the field is named.
  ModelShape wider = small();
  wider.n_embd = 32;
  GPT2 other(wider, 2, 4);
  AdamW other_opt(other.layout(), {});
  try {
    load_checkpoint(good, other, other_opt, g2);
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_EQ(e.key(), "n_embd");
  }
}


// Attribute `name` of `object` in the file at `path`, replaced by one holding `values`.
void rewrite_attribute(const std::string& path, const char* object, const char* name,
                       const std::vector<int64_t>& values) {
  H5Handle f(h5_check(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open"), H5Fclose);
  H5Handle obj(h5_check(H5Oopen(f.get(), object, H5P_DEFAULT), object), H5Oclose);
  h5_check(H5Adelete(obj.get(), name), name);
  const hsize_t n = values.size();
  H5Handle space(h5_check(H5Screate_simple(1, &n, nullptr), "space"), H5Sclose);
  H5Handle a(h5_check(H5Acreate2(obj.get(), name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), name),
             H5Aclose);
  h5_check(H5Awrite(a.get(), H5T_NATIVE_INT64, values.data()), name);
}

std::string saved_checkpoint(const TempDir& dir) {
  ProcessGrid grid(MPI_COMM_SELF, 1);
  Trained a;
  const std::string path = checkpoint_path(dir.path(), 3);
  save_checkpoint(path, a.model, a.optimizer, some_state(), grid);
  return path;
}

// Found by fuzzing (tests/fuzz/regressions/fuzz_checkpoint): H5Aread writes every value an attribute holds, so a
// scalar attribute rewritten as an array overflowed the variable it was read into.
TEST(Checkpoint, AnAttributeOfSeveralValuesIsAnInputError) {
  TempDir dir;
  const std::string path = saved_checkpoint(dir);
  rewrite_attribute(path, "/", "step", {3, 4});
  expect_bad(path, "step");
  try {
    describe_checkpoint(path);
    ADD_FAILURE() << "accepted " << path;
  } catch (const InputError& e) {
    EXPECT_EQ(e.key(), "step") << e.what();
  }
}

// Found by fuzzing: verify read as many values as a dataset's recorded geometry promised, whatever it held.
TEST(Checkpoint, VerifyReportsADatasetItsRecordedGeometryDoesNotDescribe) {
  TempDir dir;
  const std::string path = saved_checkpoint(dir);
  rewrite_attribute(path, "/params/wte", "layers_rows_cols", {1, 1, 1});
  rewrite_attribute(path, "/params/wpe", "layers_rows_cols", {INT64_MIN, INT64_MIN, 1});
  rewrite_attribute(path, "/adamw_m/lnfb", "layers_rows_cols", {1, 16});
  EXPECT_EQ(verify_checkpoint(path), (std::vector<std::string>{"/params/wte", "/params/wpe", "/adamw_m/lnfb"}));
}

// A dataset of a shape other than the model's (found reading the code the fuzzers pointed at: HDF5 takes as many
// selection entries as the dataset has dimensions, past the model's).
TEST(Checkpoint, ADatasetOfAnotherShapeIsAnInputErrorNamingIt) {
  TempDir dir;
  const std::string path = saved_checkpoint(dir);
  {
    H5Handle f(h5_check(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open"), H5Fclose);
    h5_check(H5Ldelete(f.get(), "/params/lnfb", H5P_DEFAULT), "delete");
    const hsize_t dims[4] = {1, 1, 1, hsize_t(small().n_embd)};
    H5Handle space(h5_check(H5Screate_simple(4, dims, nullptr), "space"), H5Sclose);
    H5Handle d(h5_check(H5Dcreate2(f.get(), "/params/lnfb", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                   H5P_DEFAULT), "create"),
               H5Dclose);
  }
  ProcessGrid grid(MPI_COMM_SELF, 1);
  GPT2 model(small(), 2, 4);
  AdamW optimizer(model.layout(), {});
  try {
    load_checkpoint(path, model, optimizer, grid);
    FAIL() << "a 4-D /params/lnfb was read";
  } catch (const InputError& e) {
    EXPECT_EQ(e.key(), "/params/lnfb") << e.what();
    EXPECT_NE(std::string(e.what()).find("shape is not the model's"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace est
