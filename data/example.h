// One dataset example as it moves through collect → label → split → format, and its JSONL
// form (train/val/test.jsonl). The unlabeled pool that the later `select` stage ranks is the
// same type with an empty `sql`.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lathe::data {

struct Example {
  std::string id;        // stable: "<family>-<language>-<n>" for templates, "user-<n>" imported
  std::string family;    // template family, "user" for imported questions
  std::string language;  // "zh" | "en"
  std::string question;
  std::string sql;                 // gold SQL; empty when unlabeled
  nlohmann::json gold_result;      // canonical result (sql_exec.h); null until labelled
  std::string source;              // "FILE:LINE" of an imported question; empty for templates
};

nlohmann::json example_to_json(const Example& example);
// Throws lathe::Error naming `where` (e.g. "FILE:LINE") when a field is missing or mistyped.
Example example_from_json(const nlohmann::json& json, const std::string& where);

// One JSONL line (with "\n"); invalid UTF-8 in user text becomes U+FFFD instead of throwing.
std::string to_json_line(const nlohmann::json& json);

void write_examples_jsonl(const std::string& path, const std::vector<Example>& examples);
std::vector<Example> read_examples_jsonl(const std::string& path);

}  // namespace lathe::data
