// Group-relative advantages (GRPO, as TRL computes them): A_i = (r_i − mean_group) / (std + 1e-4)
// with the unbiased (N − 1) standard deviation; scale_rewards picks the std: "group" (its own
// group's), "batch" (over every reward of the batch; the mean stays per group) or "none"
// (no division, Dr. GRPO's choice).
// Departure from TRL: a group whose rewards are all exactly equal gets advantages of exactly 0
// (TRL can leave rounding residue of r − mean, divided by 1e-4).
#pragma once
#include <string>
#include <vector>

namespace lathe::rl {

enum class ScaleRewards { Group, Batch, None };
ScaleRewards scale_rewards_from_name(const std::string& name);  // group | batch | none

struct Advantages {
  std::vector<double> values;      // [N], N = groups × G, group-major
  std::vector<double> group_mean;  // [groups]
  std::vector<double> group_std;   // [groups], unbiased
  double frac_zero_std = 0;        // groups whose rewards are all equal (they teach nothing)
};

// rewards [N] group-major (completions of one prompt adjacent); group_size G >= 2.
Advantages group_advantages(const std::vector<double>& rewards, int64_t group_size, ScaleRewards scale);

// Unbiased sample standard deviation (0 for fewer than 2 values).
double unbiased_std(const std::vector<double>& values);
double mean_of(const std::vector<double>& values);

}  // namespace lathe::rl
