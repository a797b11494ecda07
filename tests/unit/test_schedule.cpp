#include <gtest/gtest.h>

#include <cmath>

#include "trainer/schedule.h"

using namespace linspec::trainer;

TEST(Schedule, WarmupThenConstant) {
  ScheduleConfig c{"constant_with_warmup", 1e-3, 4, 100, 0.0};
  EXPECT_DOUBLE_EQ(learning_rate(c, 0), 0.25e-3);
  EXPECT_DOUBLE_EQ(learning_rate(c, 3), 1e-3);
  EXPECT_DOUBLE_EQ(learning_rate(c, 50), 1e-3);
}

TEST(Schedule, CosineReachesFloorAtTheEnd) {
  ScheduleConfig c{"cosine", 1.0, 10, 110, 0.1};
  EXPECT_DOUBLE_EQ(learning_rate(c, 10), 1.0);
  EXPECT_NEAR(learning_rate(c, 60), 0.1 + 0.9 * 0.5, 1e-12);  // halfway: cos(pi/2) = 0
  EXPECT_NEAR(learning_rate(c, 110), 0.1, 1e-12);
}

TEST(Schedule, LinearDecay) {
  ScheduleConfig c{"linear", 2.0, 0, 10, 0.0};
  EXPECT_DOUBLE_EQ(learning_rate(c, 0), 2.0);
  EXPECT_DOUBLE_EQ(learning_rate(c, 5), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(c, 10), 0.0);
}
