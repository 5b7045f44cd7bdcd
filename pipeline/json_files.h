// The JSON files stages leave (stage.json, results.json, metrics.jsonl, predictions-*.jsonl),
// read forgivingly: a missing or broken file is "absent", and a JSONL line a crash cut short is
// skipped, so a report or a skip decision never fails on a half-written run.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lathe::pipeline {

std::optional<nlohmann::json> read_json_file(const std::string& path);
// Every line that parses as a JSON object.
std::vector<nlohmann::json> read_jsonl_file(const std::string& path);
// One JSON object per line, written atomically.
void write_jsonl_file(const std::string& path, const std::vector<nlohmann::json>& rows);

}  // namespace lathe::pipeline
