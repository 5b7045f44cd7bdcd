// The GRPO recipe (rl/grpo.cpp): setup -> loop (rollout, reference, μ policy updates, log,
// checkpoint) -> save, read top to bottom. Improves a LoRA adapter (new, or usually the SFT
// one) on prompts from a GRPO JSONL, rewarded by the functions named in `rewards.use`.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "rl/rewards.h"

namespace lathe {

// Every key `lathe grpo` accepts, including rewards.<name>.weight and rewards.<name>.<option>
// for each reward registered when it is first called.
const ConfigSchema& grpo_config_schema();

// The rewards named in rewards.use, with their weights and options from the config.
std::vector<rl::WeightedReward> make_configured_rewards(const Config& config);

struct GrpoRunOptions {
  std::string run_dir;            // overrides run.dir; empty = run.dir, or runs/<run.name>
  bool resume = false;            // continue from the newest checkpoint in the run folder
  bool quiet = false;             // no progress output (tests)
  int64_t stop_after_steps = -1;  // behave as if interrupted after this many steps (tests)
};

struct GrpoResult {
  std::string run_dir;
  std::vector<nlohmann::json> step_metrics;  // the metrics line of every step this call ran
  int64_t first_step = 0;                    // step number of step_metrics[0]
  int64_t steps = 0;                         // GRPO steps done in total
  bool interrupted = false;
  int signal = 0;
};

GrpoResult run_grpo(const Config& config, const GrpoRunOptions& options);

}  // namespace lathe
