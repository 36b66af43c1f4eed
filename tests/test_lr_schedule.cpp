#include <gtest/gtest.h>

#include "optim/lr_schedule.hpp"

namespace est {
namespace {

// Values by hand: lr 1, min_lr 0.1.
TEST(LrSchedule, CosineWarmsUpThenDecaysToMinLrAtTheLastStep) {
  const LrSchedule s{1.0f, 0.1f, 2, 12, LrDecay::cosine};
  EXPECT_FLOAT_EQ(s.at(0), 0.5f);
  EXPECT_FLOAT_EQ(s.at(1), 1.0f);
  EXPECT_FLOAT_EQ(s.at(2), 1.0f);       // decay progress 0 of 9
  EXPECT_FLOAT_EQ(s.at(7), 0.47185832f);  // 0.1 + 0.9 * (1 + cos(5/9 pi)) / 2
  EXPECT_FLOAT_EQ(s.at(11), 0.1f);
}

TEST(LrSchedule, WsdHoldsTheRateThenDecaysLinearlyOverTheFinalFraction) {
  const LrSchedule s{1.0f, 0.1f, 2, 20, LrDecay::wsd, 0.25};  // decay over steps 15..19
  EXPECT_FLOAT_EQ(s.at(0), 0.5f);
  EXPECT_FLOAT_EQ(s.at(1), 1.0f);
  EXPECT_FLOAT_EQ(s.at(10), 1.0f);
  EXPECT_FLOAT_EQ(s.at(14), 1.0f);
  EXPECT_FLOAT_EQ(s.at(15), 0.82f);  // 1 - 0.9 * 1/5
  EXPECT_FLOAT_EQ(s.at(17), 0.46f);  // 1 - 0.9 * 3/5
  EXPECT_FLOAT_EQ(s.at(19), 0.1f);
}

TEST(LrSchedule, WsdOverTheWholeRunIsLinearDecay) {
  const LrSchedule s{1.0f, 0.1f, 0, 4, LrDecay::wsd, 1.0};
  EXPECT_FLOAT_EQ(s.at(0), 0.775f);
  EXPECT_FLOAT_EQ(s.at(1), 0.55f);
  EXPECT_FLOAT_EQ(s.at(2), 0.325f);
  EXPECT_FLOAT_EQ(s.at(3), 0.1f);
}

}  // namespace
}  // namespace est
