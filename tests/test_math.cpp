#include <cmath>

#include "math.hpp"
#include "test_util.hpp"

namespace est {
namespace {

TEST(Math, FastExpIsWithinTwoUlpAcrossTheFloatRange) {
  float worst = 0.0f, at = 0.0f;
  for (float x = -87.0f; x < 88.0f; x += 0.001f) {
    const double want = std::exp(double(x));
    const float got = kmath::fast_exp(x);
    const float ulp = std::nextafter(float(want), INFINITY) - float(want);
    const float err = float(std::abs(got - want) / ulp);
    if (err > worst) { worst = err; at = x; }
  }
  EXPECT_LE(worst, 2.0f) << "at x = " << at;
  EXPECT_EQ(kmath::fast_exp(0.0f), 1.0f);
  EXPECT_GT(kmath::fast_exp(-200.0f), 0.0f);
  EXPECT_TRUE(std::isfinite(kmath::fast_exp(200.0f)));
}

TEST(Math, SigmoidSaturatesWithoutNaN) {
  EXPECT_NEAR(kmath::sigmoid(0.0f), 0.5f, 1e-7);
  EXPECT_NEAR(kmath::sigmoid(100.0f), 1.0f, 1e-7);
  EXPECT_NEAR(kmath::sigmoid(-100.0f), 0.0f, 1e-7);
  EXPECT_NEAR(kmath::sigmoid(1.5f), 1.0 / (1.0 + std::exp(-1.5)), 1e-7);
}

}  // namespace
}  // namespace est
