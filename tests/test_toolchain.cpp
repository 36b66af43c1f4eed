// Guards against a miscompilation of the toolchain this project is built with: GCC 12.2 targeting AVX-512
// stores small int64 constant arrays as a wrong broadcast (CMakeLists.txt turns the SLP vectorizer off for it).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

namespace {

__attribute__((noinline)) void store_constants(int64_t* out) {
  const int64_t values[4] = {1, 1, 0, 0};
  std::memcpy(out, values, sizeof values);
}

TEST(Toolchain, SmallInt64ConstantArraysSurviveVectorisation) {
  int64_t out[4] = {-1, -1, -1, -1};
  store_constants(out);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[1], 1);
  EXPECT_EQ(out[2], 0);
  EXPECT_EQ(out[3], 0);
}

}  // namespace
