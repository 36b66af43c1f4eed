// Every GEMM backend in this build against a naive double-precision product, all transposes, plain and
// strided-batched.
#include <tuple>

#include "gemm.hpp"
#include "test_util.hpp"

namespace est {
namespace {

using gemm::Backend;
using gemm::Op;

std::vector<double> naive(Op ta, Op tb, int M, int N, int K, float alpha, const std::vector<float>& A, int lda,
                          const std::vector<float>& B, int ldb, float beta, const std::vector<float>& C, int ldc) {
  std::vector<double> out(C.begin(), C.end());
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = 0;
      for (int k = 0; k < K; ++k) {
        const double a = ta == Op::N ? A[i * lda + k] : A[k * lda + i];
        const double b = tb == Op::N ? B[k * ldb + j] : B[j * ldb + k];
        s += a * b;
      }
      out[i * ldc + j] = alpha * s + beta * C[i * ldc + j];
    }
  return out;
}

class GemmTest : public ::testing::TestWithParam<std::tuple<Backend, Op, Op>> {
 protected:
  void SetUp() override {
    gemm::set_backend(std::get<0>(GetParam()));
  }
  void TearDown() override { gemm::set_backend(gemm::default_backend()); }
};

TEST_P(GemmTest, MatchesNaiveWithPaddedLeadingDimensions) {
  const auto [backend, ta, tb] = GetParam();
  const int M = 37, N = 29, K = 53;
  const int lda = (ta == Op::N ? K : M) + 3, ldb = (tb == Op::N ? N : K) + 5, ldc = N + 2;
  const int rowsA = ta == Op::N ? M : K, rowsB = tb == Op::N ? K : N;
  auto A = test::randn(size_t(rowsA) * lda, 1), B = test::randn(size_t(rowsB) * ldb, 2);
  auto C = test::randn(size_t(M) * ldc, 3);
  const auto want = naive(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C, ldc);
  Buffer dA = test::to_device(A), dB = test::to_device(B), dC = test::to_device(C);
  gemm::sgemm(ta, tb, M, N, K, 0.5f, dA.data(), lda, dB.data(), ldb, 0.25f, dC.data(), ldc);
  test::expect_close(test::to_host(dC), want, 1e-4, 1e-4, gemm::backend_name(backend));
}

TEST_P(GemmTest, StridedBatchedMatchesPerItemProducts) {
  const auto [backend, ta, tb] = GetParam();
  const int M = 16, N = 12, K = 8, batch = 5;
  const int lda = ta == Op::N ? K : M, ldb = tb == Op::N ? N : K, ldc = N;
  const int sA = M * K + 7, sB = K * N + 3, sC = M * N + 1;
  auto A = test::randn(size_t(sA) * batch, 4), B = test::randn(size_t(sB) * batch, 5);
  std::vector<float> C(size_t(sC) * batch, 0.0f);
  std::vector<double> want(C.size(), 0.0);
  for (int i = 0; i < batch; ++i) {
    std::vector<float> a(A.begin() + i * sA, A.begin() + (i + 1) * sA), b(B.begin() + i * sB, B.begin() + (i + 1) * sB);
    std::vector<float> c(sC, 0.0f);
    auto w = naive(ta, tb, M, N, K, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    std::copy(w.begin(), w.end(), want.begin() + i * sC);
  }
  Buffer dA = test::to_device(A), dB = test::to_device(B), dC = test::to_device(C);
  gemm::sgemm_strided_batched(ta, tb, M, N, K, 1.0f, dA.data(), lda, sA, dB.data(), ldb, sB, 0.0f, dC.data(), ldc,
                              sC, batch);
  test::expect_close(test::to_host(dC), want, 1e-4, 1e-4, gemm::backend_name(backend));
}

// The backends this build has: oneDNN and CBLAS on CPUs, cuBLAS in CUDA builds.
std::vector<Backend> built_backends() {
  std::vector<Backend> built;
  for (Backend b : {Backend::onednn, Backend::cblas, Backend::cublas})
    if (gemm::backend_available(b)) built.push_back(b);
  return built;
}

INSTANTIATE_TEST_SUITE_P(AllBackends, GemmTest,
                         ::testing::Combine(::testing::ValuesIn(built_backends()),
                                            ::testing::Values(Op::N, Op::T), ::testing::Values(Op::N, Op::T)));

TEST(Gemm, BackendNamesRoundTrip) {
  for (Backend b : {Backend::onednn, Backend::cblas, Backend::cublas}) {
    Backend parsed;
    ASSERT_TRUE(gemm::parse_backend(gemm::backend_name(b), parsed));
    EXPECT_EQ(parsed, b);
  }
  Backend ignored;
  EXPECT_FALSE(gemm::parse_backend("mkl", ignored));
}

}  // namespace
}  // namespace est
