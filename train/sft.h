// The SFT recipe (train/sft.cpp): setup -> loop -> save, read top to bottom. Full fine-tuning
// (also of a model made from nothing, for tiny base models) or LoRA, from one config.
#pragma once
#include <atomic>
#include <string>
#include <vector>

#include <torch/types.h>

#include "core/config.h"

namespace lathe {

// Every key `lathe sft` accepts (docs/config.md is generated from it).
const ConfigSchema& sft_config_schema();

struct SftRunOptions {
  std::string run_dir;          // overrides run.dir; empty = run.dir, or runs/<run.name>
  bool resume = false;          // continue from the newest checkpoint in the run folder
  bool quiet = false;           // no progress output (tests)
  int64_t stop_after_steps = -1;  // behave as if interrupted after this many steps (tests)
};

struct SftResult {
  std::string run_dir;
  std::vector<double> losses;   // the loss of every optimizer step this call ran
  int64_t first_step = 0;       // step number of losses[0] (1-based; > 1 after a resume)
  int64_t steps = 0;            // optimizer steps done in total
  double eval_loss = -1;        // last evaluation (-1: none)
  double eval_accuracy = -1;
  bool interrupted = false;     // stopped by SIGINT/SIGTERM (or stop_after_steps); checkpoint saved
  int signal = 0;               // the signal that stopped it, 0 if none
};

SftResult run_sft(const Config& config, const SftRunOptions& options);

// training.autocast on `device`: "bf16" on, "none" off, "auto" on where bf16 matmuls are native.
bool autocast_enabled(const std::string& mode, torch::Device device);

}  // namespace lathe
