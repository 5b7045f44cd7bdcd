// Stage JSON files: see json_files.h.
#include "pipeline/json_files.h"

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "data/example.h"

namespace lathe::pipeline {

using nlohmann::json;

std::optional<json> read_json_file(const std::string& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  try {
    return json::parse(read_file(path));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::vector<json> read_jsonl_file(const std::string& path) {
  std::vector<json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      json j = json::parse(line);
      if (j.is_object()) rows.push_back(std::move(j));
    } catch (const json::exception&) {
    }
  }
  return rows;
}

void write_jsonl_file(const std::string& path, const std::vector<json>& rows) {
  std::string out;
  for (const auto& r : rows) out += data::to_json_line(r);
  write_file_atomic(path, out);
}

}  // namespace lathe::pipeline
