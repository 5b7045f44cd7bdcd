// Stage bookkeeping: see stage.h.
#include "pipeline/stage.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "data/rng.h"
#include "pipeline/json_files.h"

namespace lathe::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kRecord = "stage.json";
const char* kStarted = "stage.started.json";

}  // namespace

std::string stage_key(const std::string& stage, const std::string& config_text,
                      const std::vector<std::string>& input_keys) {
  std::string text = stage + "\n" + config_text;
  for (const auto& k : input_keys) text += "\ninput " + k;
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(data::stable_hash(text)));
  return buf;
}

std::optional<StageRecord> read_stage_record(const std::string& stage_dir) {
  const auto j = read_json_file(stage_dir + "/" + kRecord);
  if (!j || !j->is_object() || !j->contains("key") || !(*j)["key"].is_string()) return std::nullopt;
  StageRecord r;
  r.stage = j->value("stage", "");
  r.key = (*j)["key"].get<std::string>();
  r.inputs = j->value("inputs", json::object());
  r.summary = j->value("summary", json::object());
  r.seconds = j->value("seconds", 0.0);
  r.config_text = j->value("config", "");
  return r;
}

StageState stage_state(const std::string& stage_dir, const std::string& key, const std::vector<std::string>& outputs) {
  if (const auto record = read_stage_record(stage_dir); record && record->key == key) {
    bool complete = true;
    for (const auto& o : outputs) complete = complete && fs::exists(stage_dir + "/" + o);
    if (complete) return StageState::Current;
  }
  const auto started = read_json_file(stage_dir + "/" + kStarted);
  if (started && started->is_object() && started->value("key", "") == key && !fs::exists(stage_dir + "/" + kRecord))
    return StageState::Resumable;
  return StageState::Stale;
}

StageRun run_stage(const std::string& stage_dir, StageRecord record, const std::vector<std::string>& outputs,
                   bool can_resume, const std::function<json(const StageContext&)>& body) {
  const StageState state = stage_state(stage_dir, record.key, outputs);
  if (state == StageState::Current) {
    log::info("stage " + record.stage + ": up to date (key " + record.key + "), skipped");
    return {*read_stage_record(stage_dir), true};
  }
  StageContext context{stage_dir, can_resume && state == StageState::Resumable};
  std::error_code ec;
  if (!context.resume) fs::remove_all(stage_dir, ec);
  fs::create_directories(stage_dir, ec);
  if (ec) fail("cannot create " + stage_dir + ": " + ec.message());
  fs::remove(stage_dir + "/" + kRecord, ec);
  write_file_atomic(stage_dir + "/" + kStarted, json{{"stage", record.stage}, {"key", record.key}}.dump() + "\n");
  log::info("stage " + record.stage + ": " + (context.resume ? "resuming" : "running") + " (key " + record.key + ")");

  const auto start = std::chrono::steady_clock::now();
  record.summary = body(context);
  record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const auto& o : outputs)
    if (!fs::exists(stage_dir + "/" + o)) fail("stage " + record.stage + " finished without its output " + stage_dir + "/" + o);
  const json j = {{"stage", record.stage},     {"key", record.key},         {"inputs", record.inputs},
                  {"seconds", record.seconds}, {"summary", record.summary}, {"config", record.config_text}};
  write_file_atomic(stage_dir + "/" + kRecord, j.dump(2) + "\n");
  fs::remove(stage_dir + "/" + kStarted, ec);
  return {record, false};
}

}  // namespace lathe::pipeline
