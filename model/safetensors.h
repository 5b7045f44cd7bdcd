// safetensors reading (mmap, validated) and writing (atomic), plus checkpoint folders that
// hold either one model.safetensors or shards listed in model.safetensors.index.json.
// Format: 8-byte little-endian header length N, N bytes of JSON, then the data buffer;
// see ../shared/docs/INTEROP.md. Every malformed case throws lathe::Error naming the file
// and, where there is one, the tensor.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lathe {

struct SafetensorsEntry {
  std::string dtype;            // "F32", "BF16", "F16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;           // offsets into the data buffer, end exclusive
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Maps the file and validates the whole header; throws lathe::Error on any defect.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  const SafetensorsEntry& entry(const std::string& name) const;  // throws naming file + tensor
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // A CPU tensor with the stored dtype, copied out of the mapping.
  torch::Tensor load(const std::string& name) const;

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  uint64_t data_start_ = 0;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes tensors (any device; contiguous CPU copies are made) atomically.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// A model folder's weights: model.safetensors, or shards from model.safetensors.index.json.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::string& model_dir);
  std::vector<std::string> names() const;  // sorted, across all shards
  bool contains(const std::string& name) const;
  const SafetensorsEntry& entry(const std::string& name) const;
  torch::Tensor load(const std::string& name) const;  // stored dtype, CPU
  std::string file_of(const std::string& name) const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> index_;  // tensor name -> files_ slot
};

// Writes model.safetensors, or shards "model-0000i-of-0000n.safetensors" plus the index
// when the total exceeds max_shard_bytes (0 = never shard).
void save_checkpoint_tensors(const std::string& model_dir, const NamedTensors& tensors,
                             uint64_t max_shard_bytes = 0);

}  // namespace lathe
