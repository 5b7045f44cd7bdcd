// The main job, end to end (`lathe pipeline --config FILE --run-dir DIR`): inventory data →
// pretraining corpus → SentencePiece tokenizer → pretraining a tiny base from nothing → LoRA
// SFT → GRPO → execution-accuracy eval of base / SFT / GRPO → the run report. The recipe is
// pipeline.cpp, read top to bottom; every stage calls the library that `lathe data`,
// `lathe sft` and `lathe grpo` call, in RUN/<stage>/, and is skipped when it is current
// (pipeline/stage.h).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"

namespace lathe::pipeline {

struct PipelineOptions {
  std::string run_dir;
  bool quiet = false;  // no training progress lines (tests)
};

struct StageOutcome {
  std::string stage;
  bool skipped = false;
  double seconds = 0;  // this run's time (0 when skipped); the record keeps the original
  nlohmann::json summary;
};

struct PipelineResult {
  std::string run_dir;
  std::vector<StageOutcome> stages;
  std::string report_path;  // empty without the report stage
  bool interrupted = false;  // a training stage stopped on SIGINT/SIGTERM (checkpoint saved)
  int signal = 0;
};

// Everything that can be checked before any work starts: stage list and dependencies, the
// base model folder, an existing dataset's rows, input files, a writable run folder. Throws a
// one-line lathe::Error naming the thing.
void check_pipeline_inputs(const Config& config, const std::string& run_dir);

PipelineResult run_pipeline(const Config& config, const PipelineOptions& options);

// The lines the CLI prints at the end: time per stage, the accuracy table, where the report is.
std::string format_pipeline_summary(const PipelineResult& result);

}  // namespace lathe::pipeline
