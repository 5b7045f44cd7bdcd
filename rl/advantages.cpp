#include "rl/advantages.h"

#include <cmath>

#include "core/error.h"

namespace lathe::rl {

ScaleRewards scale_rewards_from_name(const std::string& name) {
  if (name == "group") return ScaleRewards::Group;
  if (name == "batch") return ScaleRewards::Batch;
  if (name == "none") return ScaleRewards::None;
  fail("scale_rewards '" + name + "' is not one of group, batch, none");
}

double mean_of(const std::vector<double>& values) {
  if (values.empty()) return 0;
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

double unbiased_std(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  const double mean = mean_of(values);
  double ss = 0;
  for (double v : values) ss += (v - mean) * (v - mean);
  return std::sqrt(ss / static_cast<double>(values.size() - 1));
}

Advantages group_advantages(const std::vector<double>& rewards, int64_t group_size, ScaleRewards scale) {
  if (group_size < 2) fail("group advantages need at least 2 completions per prompt (num_generations >= 2)");
  if (rewards.size() % static_cast<size_t>(group_size) != 0)
    fail(std::to_string(rewards.size()) + " rewards do not split into groups of " + std::to_string(group_size));
  const size_t G = static_cast<size_t>(group_size), groups = rewards.size() / G;
  Advantages out;
  out.values.resize(rewards.size());
  const double batch_std = unbiased_std(rewards);
  size_t zero_std = 0;
  for (size_t g = 0; g < groups; ++g) {
    std::vector<double> group(rewards.begin() + g * G, rewards.begin() + (g + 1) * G);
    const double mean = mean_of(group), std = unbiased_std(group);
    out.group_mean.push_back(mean);
    out.group_std.push_back(std);
    bool all_equal = true;
    for (double r : group) all_equal = all_equal && r == group[0];
    zero_std += all_equal;
    const double denominator = scale == ScaleRewards::Group ? std + 1e-4 : scale == ScaleRewards::Batch ? batch_std + 1e-4 : 1.0;
    for (size_t i = 0; i < G; ++i) out.values[g * G + i] = all_equal ? 0.0 : (group[i] - mean) / denominator;
  }
  out.frac_zero_std = groups ? static_cast<double>(zero_std) / static_cast<double>(groups) : 0.0;
  return out;
}

}  // namespace lathe::rl
