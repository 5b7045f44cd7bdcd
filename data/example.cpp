// JSONL form of dataset examples.
#include "data/example.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/text_io.h"

namespace lathe::data {

nlohmann::json example_to_json(const Example& example) {
  nlohmann::json j = {{"id", example.id},           {"family", example.family},
                      {"language", example.language}, {"question", example.question},
                      {"sql", example.sql}};
  if (!example.gold_result.is_null()) j["gold_result"] = example.gold_result;
  if (!example.source.empty()) j["source"] = example.source;
  return j;
}

Example example_from_json(const nlohmann::json& json, const std::string& where) {
  if (!json.is_object()) fail(where + ": expected a JSON object");
  auto text = [&](const char* key, bool required) -> std::string {
    auto it = json.find(key);
    if (it == json.end() || it->is_null()) {
      if (required) fail(where + ": missing \"" + key + "\"");
      return "";
    }
    if (!it->is_string()) fail(where + ": \"" + key + "\" must be a string");
    return it->get<std::string>();
  };
  Example e;
  e.id = text("id", true);
  e.family = text("family", true);
  e.language = text("language", true);
  e.question = text("question", true);
  e.sql = text("sql", false);
  if (auto it = json.find("gold_result"); it != json.end()) e.gold_result = *it;
  e.source = text("source", false);
  return e;
}

std::string to_json_line(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void write_examples_jsonl(const std::string& path, const std::vector<Example>& examples) {
  std::string out;
  for (const auto& e : examples) out += to_json_line(example_to_json(e));
  write_file_atomic(path, out);
}

std::vector<Example> read_examples_jsonl(const std::string& path) {
  std::vector<Example> examples;
  for (const auto& line : read_jsonl_lines(path)) {
    const std::string where = path + ":" + std::to_string(line.line);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line.text);
    } catch (const nlohmann::json::exception& e) {
      fail(where + ": invalid JSON (" + e.what() + ")");
    }
    examples.push_back(example_from_json(j, where));
  }
  return examples;
}

}  // namespace lathe::data
