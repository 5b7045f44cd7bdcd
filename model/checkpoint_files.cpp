// A model folder's weights as Hugging Face lays them out: one model.safetensors, or shards
// "model-0000i-of-0000n.safetensors" listed by model.safetensors.index.json's weight_map.
// Like transformers, a folder holding both prefers model.safetensors; so the writer removes
// whichever layout it did not write, lest a stale file shadow the new weights.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "model/safetensors.h"

namespace lathe {
namespace fs = std::filesystem;
namespace {

constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";

std::string shard_name(size_t i, size_t n) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "model-%05zu-of-%05zu.safetensors", i, n);
  return buffer;
}

bool is_shard_name(const std::string& name) {
  static const std::regex pattern("model-[0-9]{5}-of-[0-9]{5}\\.safetensors");
  return std::regex_match(name, pattern);
}

// Removes the weight files of a previous save that the new layout does not use.
void remove_stale_weights(const fs::path& dir, const std::set<std::string>& keep) {
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(dir, ec)) {
    const std::string name = item.path().filename().string();
    const bool weights = name == kSingleName || name == kIndexName || is_shard_name(name);
    if (weights && !keep.count(name)) fs::remove(item.path(), ec);
  }
}

}  // namespace

CheckpointReader::CheckpointReader(const std::string& model_dir) {
  const fs::path dir(model_dir);
  // A direct path to a .safetensors file is accepted too (handy for adapters and tests).
  if (fs::is_regular_file(dir)) {
    files_.push_back(std::make_unique<SafetensorsFile>(model_dir));
    for (const auto& name : files_[0]->names()) index_[name] = 0;
    return;
  }
  const fs::path single = dir / kSingleName;
  const fs::path index_path = dir / kIndexName;
  if (fs::exists(single)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
    for (const auto& name : files_[0]->names()) index_[name] = 0;
    return;
  }
  if (!fs::exists(index_path)) {
    fail(model_dir + ": no " + kSingleName + " or " + kIndexName +
         " (is this a Hugging Face model folder?)");
  }

  const std::string where = index_path.string();
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(read_file(where));
  } catch (const nlohmann::json::exception& e) {
    fail(where + ": not valid JSON: " + e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    fail(where + ": needs an object \"weight_map\" {tensor name: shard file}");
  }

  std::map<std::string, size_t> slot_of_file;
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    if (!file.is_string()) fail(where + ": tensor '" + tensor + "': shard must be a file name string");
    const std::string shard = file.get<std::string>();
    const fs::path shard_rel(shard);
    // The index may only point inside the model folder.
    bool escapes = shard_rel.is_absolute() || shard.empty();
    for (const auto& part : shard_rel) escapes = escapes || part == "..";
    if (escapes) fail(where + ": tensor '" + tensor + "': shard '" + shard + "' is not a file in " + model_dir);

    auto found = slot_of_file.find(shard);
    if (found == slot_of_file.end()) {
      const fs::path shard_path = dir / shard_rel;
      if (!fs::exists(shard_path)) {
        fail(where + ": tensor '" + tensor + "': shard " + shard + " is missing (" + shard_path.string() + ")");
      }
      files_.push_back(std::make_unique<SafetensorsFile>(shard_path.string()));
      found = slot_of_file.emplace(shard, files_.size() - 1).first;
    }
    if (!files_[found->second]->contains(tensor)) {
      fail(where + ": tensor '" + tensor + "' is listed in shard " + shard + " but absent from it");
    }
    index_[tensor] = found->second;
  }
  for (const auto& file : files_) {
    for (const auto& name : file->names()) {
      if (!index_.count(name)) {
        log::warn(file->path() + ": tensor '" + name + "' is not in " + where + "; ignoring it");
      }
    }
  }
}

std::vector<std::string> CheckpointReader::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& item : index_) out.push_back(item.first);
  return out;
}

bool CheckpointReader::contains(const std::string& name) const { return index_.count(name) > 0; }

std::string CheckpointReader::file_of(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    const std::string where = files_.size() == 1 ? files_[0]->path() : "checkpoint";
    fail(where + ": tensor '" + name + "' not found (" + std::to_string(index_.size()) + " tensors)");
  }
  return files_[it->second]->path();
}

const SafetensorsEntry& CheckpointReader::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) file_of(name);  // throws the "not found" error
  return files_[it->second]->entry(name);
}

torch::Tensor CheckpointReader::load(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) file_of(name);  // throws the "not found" error
  return files_[it->second]->load(name);
}

void save_checkpoint_tensors(const std::string& model_dir, const NamedTensors& tensors,
                             uint64_t max_shard_bytes) {
  const fs::path dir(model_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create " + model_dir + ": " + ec.message());

  std::set<std::string> seen;
  uint64_t total = 0;
  for (const auto& [name, t] : tensors) {
    if (!seen.insert(name).second) fail(model_dir + ": tensor '" + name + "' is given twice");
    if (!t.defined()) fail(model_dir + ": tensor '" + name + "' is undefined");
    total += static_cast<uint64_t>(t.numel()) * t.element_size();
  }

  if (max_shard_bytes == 0 || total <= max_shard_bytes) {
    save_safetensors((dir / kSingleName).string(), tensors);
    remove_stale_weights(dir, {kSingleName});
    return;
  }

  // Greedy in the caller's (model) order, as transformers does: a new shard starts when the
  // next tensor would overflow the current one; a tensor larger than the limit gets its own.
  std::vector<NamedTensors> shards(1);
  uint64_t shard_bytes = 0;
  for (const auto& item : tensors) {
    const uint64_t bytes = static_cast<uint64_t>(item.second.numel()) * item.second.element_size();
    if (!shards.back().empty() && shard_bytes + bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(item);
    shard_bytes += bytes;
  }

  nlohmann::json weight_map = nlohmann::json::object();
  std::set<std::string> written = {kIndexName};
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string name = shard_name(i + 1, shards.size());
    save_safetensors((dir / name).string(), shards[i]);
    written.insert(name);
    for (const auto& item : shards[i]) weight_map[item.first] = name;
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  // The index goes last: a reader never sees it before every shard it names is in place.
  write_file_atomic((dir / kIndexName).string(), index.dump(2) + "\n");
  remove_stale_weights(dir, written);
}

}  // namespace lathe
