// Group-relative advantages against hand-computed values for each scale_rewards mode, and
// the all-equal group (exactly 0, no NaN).
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "rl/advantages.h"

namespace lathe::rl {
namespace {

const std::vector<double> kRewards{0, 1, 1, 2, 3, 3, 3, 3};

TEST(Advantages, GroupScale) {
  const Advantages a = group_advantages(kRewards, 4, ScaleRewards::Group);
  const double s = std::sqrt(2.0 / 3.0) + 1e-4;  // group 1: mean 1, Σ(r − 1)² = 2 over N − 1 = 3
  const std::vector<double> expected{-1 / s, 0, 0, 1 / s, 0, 0, 0, 0};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(a.values[i], expected[i], 1e-12) << i;
  EXPECT_DOUBLE_EQ(a.group_mean[0], 1.0);
  EXPECT_DOUBLE_EQ(a.group_std[0], std::sqrt(2.0 / 3.0));
  EXPECT_EQ(a.group_std[1], 0.0);
  EXPECT_EQ(a.frac_zero_std, 0.5);
}

TEST(Advantages, BatchScale) {
  const Advantages a = group_advantages(kRewards, 4, ScaleRewards::Batch);
  const double s = std::sqrt(10.0 / 7.0) + 1e-4;  // batch mean 2, Σ(r − 2)² = 10 over 7
  const std::vector<double> expected{-1 / s, 0, 0, 1 / s, 0, 0, 0, 0};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(a.values[i], expected[i], 1e-12) << i;
}

TEST(Advantages, NoScale) {
  const Advantages a = group_advantages(kRewards, 4, ScaleRewards::None);
  EXPECT_EQ(a.values, (std::vector<double>{-1, 0, 0, 1, 0, 0, 0, 0}));
}

TEST(Advantages, EqualRewardsGiveExactlyZero) {
  // 0.1 · 3 / 3 is not 0.1 in doubles: without the all-equal rule r − mean would be ~1e-17.
  for (auto scale : {ScaleRewards::Group, ScaleRewards::Batch, ScaleRewards::None}) {
    const Advantages a = group_advantages({0.1, 0.1, 0.1, 0.7, 0.2, 0.7}, 3, scale);
    EXPECT_EQ(a.values[0], 0.0);
    EXPECT_EQ(a.values[1], 0.0);
    EXPECT_EQ(a.values[2], 0.0);
    for (double v : a.values) EXPECT_FALSE(std::isnan(v));
    EXPECT_NEAR(a.frac_zero_std, 0.5, 0);
  }
}

TEST(Advantages, BadGroupsAreErrors) {
  EXPECT_THROW(group_advantages({1, 2, 3}, 2, ScaleRewards::Group), Error);
  EXPECT_THROW(group_advantages({1, 2}, 1, ScaleRewards::Group), Error);
  EXPECT_THROW(scale_rewards_from_name("groups"), Error);
  EXPECT_EQ(scale_rewards_from_name("batch"), ScaleRewards::Batch);
}

}  // namespace
}  // namespace lathe::rl
