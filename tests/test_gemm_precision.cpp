// Mixed precision on the GEMM path. On any CPU: the bf16 rounding against the nearest bf16 by exact distance,
// tf32 on CPUs being fp32 bit for bit, fp32 untouched by the other precisions, and the error where bf16 cannot
// run. Where the hardware runs bf16 (oneDNN on AVX512-BF16 or AMX-BF16, cuBLAS): each backend's bf16 product
// against a product of the bf16-rounded operands accumulated in double, and training losses near fp32's.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>

#include "bf16.hpp"
#include "config/config.hpp"
#include "gemm.hpp"
#include "input_error.hpp"
#include "model/architectures.hpp"
#include "optim/optimizer.hpp"
#include "test_util.hpp"
#include "train/runtime.hpp"
#include "train/step.hpp"

namespace est {
namespace {

using gemm::Backend;
using gemm::Op;
using gemm::Precision;

float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

uint16_t rounded(uint32_t fp32_bits) { return bf16::from_float(from_bits(fp32_bits)); }

// For a finite x: of the two bf16 around it, the nearer by exact distance, the even one on a tie. Past the
// largest finite bf16 the next one up is infinity, standing for 2^128 as IEEE rounding has it.
uint16_t nearest_bf16(float x) {
  const uint16_t toward_zero = uint16_t(bits_of(x) >> 16), away = uint16_t(toward_zero + 1);
  const float away_value = bf16::to_float(away);
  const double far = std::isinf(away_value) ? std::copysign(std::ldexp(1.0, 128), x) : double(away_value);
  const double d_toward = std::abs(double(x) - double(bf16::to_float(toward_zero))), d_away = std::abs(far - x);
  if (d_toward != d_away) return d_toward < d_away ? toward_zero : away;
  return (toward_zero & 1) ? away : toward_zero;
}

TEST(GemmPrecision, Bf16KeepsEveryBf16ValueAndEveryNaNANaN) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float x = bf16::to_float(uint16_t(b));
    if (std::isnan(x)) {
      const float r = bf16::to_float(bf16::from_float(x));
      EXPECT_TRUE(std::isnan(r)) << std::hex << b;
      EXPECT_EQ(std::signbit(r), std::signbit(x)) << std::hex << b;
    } else {
      EXPECT_EQ(bf16::from_float(x), b) << std::hex << b;
    }
  }
  // NaNs whose payload lies only in the dropped bits: truncated they would be infinities.
  for (uint32_t nan : {0x7f800001u, 0xff800001u, 0x7f807fffu, 0x7fc00000u}) {
    const float r = bf16::to_float(rounded(nan));
    EXPECT_TRUE(std::isnan(r)) << std::hex << nan;
    EXPECT_EQ(std::signbit(r), bool(nan >> 31)) << std::hex << nan;
  }
}

TEST(GemmPrecision, Bf16RoundsToNearestTiesToEven) {
  EXPECT_EQ(rounded(0x3f808000), 0x3f80);  // 1 + 2^-8, halfway: to the even 1
  EXPECT_EQ(rounded(0x3f818000), 0x3f82);  // 1 + 3 * 2^-8, halfway: to the even 1 + 2^-6
  EXPECT_EQ(rounded(0x3f808001), 0x3f81);  // just above halfway
  EXPECT_EQ(rounded(0x3f807fff), 0x3f80);  // just below
  EXPECT_EQ(rounded(0xbf818000), 0xbf82);  // the same, negative
  EXPECT_EQ(rounded(0x7f800000), 0x7f80);  // +inf
  EXPECT_EQ(rounded(0xff800000), 0xff80);  // -inf
  EXPECT_EQ(rounded(bits_of(FLT_MAX)), 0x7f80);   // beyond the largest bf16 and its half unit: overflow to inf
  EXPECT_EQ(rounded(bits_of(-FLT_MAX)), 0xff80);
  EXPECT_EQ(rounded(0x7f7f7fff), 0x7f7f);  // below the half unit: the largest finite bf16
  EXPECT_EQ(rounded(0x7f7f8000), 0x7f80);  // halfway, odd: up, to inf
  EXPECT_EQ(rounded(0x00000001), 0x0000);  // the smallest fp32 subnormal: to zero
  EXPECT_EQ(rounded(0x80000001), 0x8000);  // ... keeping its sign
  EXPECT_EQ(rounded(0x00010000), 0x0001);  // the smallest bf16 subnormal, exact
  EXPECT_EQ(rounded(0x00008000), 0x0000);  // halfway between 0 and it: to the even 0
  EXPECT_EQ(rounded(0x00018000), 0x0002);  // halfway between subnormals 1 and 2: to 2
  EXPECT_EQ(rounded(0x007fffff), 0x0080);  // the largest fp32 subnormal: up to the smallest normal bf16

  std::mt19937 rng(7);
  for (int i = 0; i < 1000000; ++i) {
    const uint32_t b = uint32_t(rng());
    const float x = from_bits(b);
    if (!std::isfinite(x)) continue;
    ASSERT_EQ(bf16::from_float(x), nearest_bf16(x)) << std::hex << b;
  }
}

// op(A)[M,K] op(B)[K,N] for `batch` items with padded leading dimensions and gaps between items, as the attention's
// strided operands have them.
struct Product {
  Op ta, tb;
  int batch;
  int M = 37, N = 29, K = 53;
  float alpha = 0.5f, beta = 0.25f;
  int lda() const { return (ta == Op::N ? K : M) + 3; }
  int ldb() const { return (tb == Op::N ? N : K) + 5; }
  int ldc() const { return N + 2; }
  int64_t sA() const { return int64_t(ta == Op::N ? M : K) * lda() + 7; }
  int64_t sB() const { return int64_t(tb == Op::N ? K : N) * ldb() + 11; }
  int64_t sC() const { return int64_t(M) * ldc() + 1; }

  std::vector<float> A = {}, B = {}, C = {};
  void fill() {
    A = test::randn(size_t(sA() * batch), 1);
    B = test::randn(size_t(sB() * batch), 2);
    C = test::randn(size_t(sC() * batch), 3);
  }

  // alpha * sum over k of in(a_ik) in(b_kj) in double, with beta * C where `with_c` (and C's values in the cells
  // outside the products), else 0 there.
  template <class In>
  std::vector<double> sums(const In& in, bool with_c) const {
    std::vector<double> out(C.size(), 0.0);
    if (with_c) out.assign(C.begin(), C.end());
    for (int b = 0; b < batch; ++b)
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
          double s = 0;
          for (int k = 0; k < K; ++k)
            s += in(A[b * sA() + (ta == Op::N ? i * lda() + k : k * lda() + i)]) *
                 in(B[b * sB() + (tb == Op::N ? k * ldb() + j : j * ldb() + k)]);
          const int64_t c = b * sC() + i * ldc() + j;
          out[c] = alpha * s + (with_c ? beta * double(C[c]) : 0.0);
        }
    return out;
  }
  // The exact product of the operands as given, or rounded to bf16 first.
  std::vector<double> reference(bool round_to_bf16) const {
    return sums([&](float x) { return round_to_bf16 ? double(bf16::to_float(bf16::from_float(x))) : double(x); },
                true);
  }
  // alpha * sum |a_ik b_kj|: operands rounded by a relative e move a cell by at most about 2e times this.
  std::vector<double> magnitude() const { return sums([](float x) { return std::abs(double(x)); }, false); }

  // The backend's result, through sgemm for one item and sgemm_strided_batched for several.
  std::vector<float> run() const {
    Buffer dA = test::to_device(A), dB = test::to_device(B), dC = test::to_device(C);
    if (batch == 1)
      gemm::sgemm(ta, tb, M, N, K, alpha, dA.data(), lda(), dB.data(), ldb(), beta, dC.data(), ldc());
    else
      gemm::sgemm_strided_batched(ta, tb, M, N, K, alpha, dA.data(), lda(), sA(), dB.data(), ldb(), sB(), beta,
                                  dC.data(), ldc(), sC(), batch);
    return test::to_host(dC);
  }
};

double max_difference(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  return worst;
}

// Each case runs on one backend; afterwards the process's GEMM is as the other suites expect it.
class GemmPrecisionBackend : public ::testing::TestWithParam<std::tuple<Backend, Op, Op, int>> {
 protected:
  void SetUp() override {
    const auto [backend, ta, tb, batch] = GetParam();
    product_ = Product{ta, tb, batch};
    product_.fill();
  }
  void TearDown() override { gemm::set_backend(gemm::default_backend()); }

  std::vector<float> run_at(Precision p) {
    gemm::set_backend(std::get<0>(GetParam()), p);
    return product_.run();
  }
  Product product_{Op::N, Op::N, 1};
};

// Products of two bf16 are exact in fp32, so what remains is fp32 accumulation, in any order: 5e-5 of the
// result's size, while the rounding of the operands moves it by about 1e-2 (a backend that left them fp32 fails).
TEST_P(GemmPrecisionBackend, Bf16IsTheProductOfRoundedOperandsAccumulatedInFp32) {
  const Backend backend = std::get<0>(GetParam());
  const std::string why = gemm::unsupported(backend, Precision::bf16);
  if (!why.empty()) GTEST_SKIP() << gemm::backend_name(backend) << ": " << why;
  const std::vector<float> got = run_at(Precision::bf16);
  test::expect_close(got, product_.reference(true), 5e-5, 5e-5, gemm::backend_name(backend));
  EXPECT_GT(max_difference(got, product_.reference(false)), 1e-3) << "the operands were not rounded to bf16";
}

// CPUs have no TF32: their tf32 is their fp32, bit for bit. cuBLAS' TF32 tensor cores keep 10 mantissa bits of
// each operand, rounded or truncated (a relative 2^-10 at most), so a cell moves by at most 2^-9 of its magnitude
// (alpha * sum |a b|), and 1e-5 of it more for fp32 accumulation.
TEST_P(GemmPrecisionBackend, Tf32IsFp32BitForBitOnCpusAndWithinTf32RoundingOnGpus) {
  const Backend backend = std::get<0>(GetParam());
  const std::vector<float> fp32 = run_at(Precision::fp32), tf32 = run_at(Precision::tf32);
  if (backend != Backend::cublas) {
    EXPECT_NE(gemm::description().find("as fp32 on CPUs"), std::string::npos) << gemm::description();
    EXPECT_EQ(std::memcmp(fp32.data(), tf32.data(), fp32.size() * sizeof(float)), 0);
    return;
  }
  const std::vector<double> exact = product_.reference(false), magnitude = product_.magnitude();
  for (size_t i = 0; i < exact.size(); ++i)
    ASSERT_LE(std::abs(tf32[i] - exact[i]), (std::ldexp(1.0, -9) + 1e-5) * magnitude[i] + 1e-6) << "cell " << i;
}

// fp32 never rounds its operands, and coming back to it from tf32 or bf16 gives the same bits as before.
TEST_P(GemmPrecisionBackend, Fp32IsUnroundedAndUnchangedByTheOtherPrecisions) {
  const Backend backend = std::get<0>(GetParam());
  const std::vector<float> before = run_at(Precision::fp32);
  const std::vector<double> exact = product_.reference(false);
  test::expect_close(before, exact, 5e-5, 5e-5, gemm::backend_name(backend));
  EXPECT_GT(max_difference(before, product_.reference(true)), 1e-3);
  run_at(Precision::tf32);
  if (gemm::unsupported(backend, Precision::bf16).empty()) run_at(Precision::bf16);
  const std::vector<float> after = run_at(Precision::fp32);
  EXPECT_EQ(std::memcmp(before.data(), after.data(), before.size() * sizeof(float)), 0);
  EXPECT_EQ(gemm::description(), std::string(gemm::backend_name(backend)) + " fp32");
}

std::vector<Backend> built_backends() {
  std::vector<Backend> built;
  for (Backend b : {Backend::onednn, Backend::cblas, Backend::cublas})
    if (gemm::backend_available(b)) built.push_back(b);
  return built;
}

// "onednn_NT_batch3"
std::string case_name(const ::testing::TestParamInfo<std::tuple<Backend, Op, Op, int>>& info) {
  const auto [backend, ta, tb, batch] = info.param;
  return std::string(gemm::backend_name(backend)) + "_" + (ta == Op::N ? "N" : "T") + (tb == Op::N ? "N" : "T") +
         "_batch" + std::to_string(batch);
}

INSTANTIATE_TEST_SUITE_P(Each, GemmPrecisionBackend,
                         ::testing::Combine(::testing::ValuesIn(built_backends()), ::testing::Values(Op::N, Op::T),
                                            ::testing::Values(Op::N, Op::T), ::testing::Values(1, 3)),
                         case_name);

// configure_runtime applies a config's runtime section; the GEMM and its threads are put back afterwards.
class GemmPrecisionConfig : public ::testing::Test {
 protected:
  void TearDown() override {
    gemm::set_threads(threads_);
    gemm::set_backend(gemm::default_backend());
  }
  const int threads_ = gemm::threads();
};

// Where a backend cannot run bf16, applying the config is one error naming the file and runtime.precision, and
// saying why; where it can, the products run at bf16.
TEST_F(GemmPrecisionConfig, Bf16WhereItCannotRunNamesTheFileTheKeyAndTheReason) {
  for (Backend b : built_backends()) {
    const std::string name = gemm::backend_name(b), why = gemm::unsupported(b, Precision::bf16);
    const Config cfg = parse_config("runtime: {gemm: " + name + ", precision: bf16}\n", "x.yaml");
    if (why.empty()) {
      configure_runtime(cfg);
      EXPECT_EQ(gemm::current_precision(), Precision::bf16) << name;
      EXPECT_EQ(gemm::description(), name + " bf16");
      continue;
    }
    const Backend backend = gemm::current_backend();
    const Precision precision = gemm::current_precision();
    try {
      configure_runtime(cfg);
      ADD_FAILURE() << name << " accepted bf16 although: " << why;
    } catch (const InputError& e) {
      EXPECT_EQ(e.file(), "x.yaml");
      EXPECT_EQ(e.key(), "runtime.precision");
      EXPECT_EQ(std::string(e.what()), "x.yaml: runtime.precision: " + why);
    }
    EXPECT_TRUE(gemm::current_backend() == backend && gemm::current_precision() == precision)
        << "a refused precision must leave the GEMM as it was";
  }
  // CBLAS has no bf16 products on any CPU, so this build always has one refusal to show.
  if (gemm::backend_available(Backend::cblas)) {
    const std::string why = gemm::unsupported(Backend::cblas, Precision::bf16);
    EXPECT_NE(why.find("cblas has no bf16 products"), std::string::npos) << why;
  }
  // oneDNN says what the CPU lacks.
  const std::string onednn = gemm::unsupported(Backend::onednn, Precision::bf16);
  if (gemm::backend_available(Backend::onednn) && !onednn.empty()) {
    EXPECT_NE(onednn.find("this CPU has"), std::string::npos) << onednn;
  }
}

// Losses of 20 AdamW steps of a small GPT-2 on a repeating text, from one seed, its GEMMs at p on this build's
// default backend.
std::vector<float> training_losses(Precision p) {
  gemm::set_backend(gemm::default_backend(), p);
  const int B = 4, T = 64, steps = 20;
  const auto owned = make_model(test::small_shape(2, 4, 128, 256, T), B, T);
  Model& m = *owned;
  m.init_random(1337);
  AdamW opt(m.layout(), AdamWConfig{0.9f, 0.95f, 1e-8f, 0.1f, false});
  const std::string text =
      "In the beginning God created the heaven and the earth. And the earth was without form, and void; and "
      "darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. ";
  std::vector<int> in(B * T), target(B * T);
  std::vector<float> losses;
  for (int step = 0; step < steps; ++step) {
    for (int i = 0; i < B * T; ++i) {
      const size_t at = size_t(step * 37 + i * 3);
      in[i] = static_cast<unsigned char>(text[at % text.size()]);
      target[i] = static_cast<unsigned char>(text[(at + 1) % text.size()]);
    }
    m.set_batch(in.data(), target.data());
    losses.push_back(train_step(m, opt, 1e-3f, 1.0).loss);
  }
  gemm::set_backend(gemm::default_backend());
  return losses;
}

// Every step's loss within a relative 1e-2 of fp32's. Measured with oneDNN bf16 on a 2-core AMD EPYC with
// AVX512-BF16, the largest step's difference over the 20 steps was 7.9e-4 at this seed and at most 2.8e-3 over 25
// seeds (median 7e-4), so 1e-2 leaves room for other CPUs' and cuBLAS' summation orders while a wrong operand or
// transpose (differences of order 1) fails. tf32 keeps 10 mantissa bits to bf16's 7. The model must also learn
// (the loss falls by a third), and a precision that runs differently from fp32 must give other losses.
constexpr double kTrainingTolerance = 1e-2;

class GemmPrecisionTraining : public ::testing::TestWithParam<Precision> {};

TEST_P(GemmPrecisionTraining, LossesStayNearFp32) {
  const Precision p = GetParam();
  const std::string why = gemm::unsupported(gemm::default_backend(), p);
  if (!why.empty()) GTEST_SKIP() << gemm::backend_name(gemm::default_backend()) << ": " << why;
  const std::vector<float> fp32 = training_losses(Precision::fp32), got = training_losses(p);
  ASSERT_EQ(got.size(), fp32.size());
  EXPECT_LT(fp32.back(), fp32.front() * 2 / 3) << "the model did not learn in " << fp32.size() << " steps";
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_LE(std::abs(got[i] - fp32[i]) / fp32[i], kTrainingTolerance)
        << "step " << i + 1 << ": " << got[i] << " against fp32 " << fp32[i];
  gemm::set_backend(gemm::default_backend(), p);
  const bool as_fp32 = gemm::description().find("as fp32") != std::string::npos;
  gemm::set_backend(gemm::default_backend());
  EXPECT_EQ(got == fp32, as_fp32) << "losses at " << gemm::precision_name(p);
}

INSTANTIATE_TEST_SUITE_P(Each, GemmPrecisionTraining, ::testing::Values(Precision::tf32, Precision::bf16),
                         [](const ::testing::TestParamInfo<Precision>& info) {
                           return std::string(gemm::precision_name(info.param));
                         });

}  // namespace
}  // namespace est
