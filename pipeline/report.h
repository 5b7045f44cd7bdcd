// `lathe report RUN_DIR`: one self-contained report.html of a pipeline run — inline SVG
// charts (pretraining and SFT loss with eval loss, GRPO total and per-reward reward, KL,
// completion length), the execution-accuracy table of base / SFT / GRPO per family and
// language, time per stage, a few GRPO rollouts, eval answers and agent answers, and every
// resolved config. No scripts, no external resources: it opens anywhere, offline.
// Reads only what the stages left (stage.json, metrics.jsonl, rollouts.jsonl, results.json,
// predictions-*.jsonl, config.yaml); a stage that has not run shows as absent.
#pragma once
#include <string>

namespace lathe::pipeline {

struct ReportOptions {
  int rollouts = 6;     // GRPO completions shown (from the last logged step)
  int predictions = 8;  // eval answers shown per model
};

std::string render_report(const std::string& run_dir, const ReportOptions& options = {});

// Writes RUN_DIR/report.html (atomically) and returns its path. Throws lathe::Error when
// RUN_DIR holds no pipeline run (no pipeline.yaml).
std::string write_report(const std::string& run_dir, const ReportOptions& options = {});

}  // namespace lathe::pipeline
