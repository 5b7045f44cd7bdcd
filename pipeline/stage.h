// Stage bookkeeping: when a pipeline stage may be skipped, resumed or must run again.
//
// Each stage owns RUN/<stage>/. Its key is a hash of its resolved config text and the keys of
// the stages it reads, so a change anywhere upstream changes every key below it. A finished
// stage writes stage.json (key, inputs, seconds, summary) last; a stage is current when
// stage.json holds the same key and every declared output exists — then it is skipped. A
// stage that started with the same key but did not finish (stage.started.json, no stage.json)
// is resumed by stages that can (training continues from its newest checkpoint); anything
// else is cleared and run afresh.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lathe::pipeline {

// 16 hex digits (FNV-1a 64) of the stage name, its config text and its inputs' keys.
std::string stage_key(const std::string& stage, const std::string& config_text,
                      const std::vector<std::string>& input_keys);

struct StageRecord {
  std::string stage, key;
  nlohmann::json inputs = nlohmann::json::object();   // input stage -> its key
  nlohmann::json summary = nlohmann::json::object();  // what the stage reports (figures, paths)
  double seconds = 0;
  std::string config_text;
};

// RUN/<stage>/stage.json, or nullopt when absent or unreadable (a broken record reruns).
std::optional<StageRecord> read_stage_record(const std::string& stage_dir);

enum class StageState { Current, Resumable, Stale };
// outputs: paths relative to stage_dir that a finished stage leaves.
StageState stage_state(const std::string& stage_dir, const std::string& key, const std::vector<std::string>& outputs);

// What a stage's body gets: its folder, and whether it continues an interrupted run.
struct StageContext {
  std::string dir;
  bool resume = false;
};

// Runs `body` unless the stage is current (then its record is returned as it is). A stale
// stage's folder is cleared first; `can_resume` lets an interrupted stage with the same key
// keep its folder and continue. The record (with the body's summary and the time) is written
// last, so a crash leaves the stage to rerun or resume.
struct StageRun {
  StageRecord record;
  bool skipped = false;
};
StageRun run_stage(const std::string& stage_dir, StageRecord record, const std::vector<std::string>& outputs,
                   bool can_resume, const std::function<nlohmann::json(const StageContext&)>& body);

}  // namespace lathe::pipeline
