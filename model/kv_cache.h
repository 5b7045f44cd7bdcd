// Key/value cache, preallocated per batch and layer so decode never reallocates.
// Rows of a batch share one write position (prompts are left-padded to a common length);
// key_valid marks which cached positions are real tokens for each row.
//
// Legend: B batch rows, K kv heads, S capacity (max positions), D head_dim.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "model/hf_config.h"

namespace lathe {

class KVCache {
 public:
  KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, torch::ScalarType dtype,
          torch::Device device);

  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }   // positions filled so far

  // Writes k, v [B, K, T, D] of `layer` at [length, length + T); returns the filled views
  // [B, K, length + T, D]. The length moves on only with advance(T), after the last layer.
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& k, const torch::Tensor& v);
  void advance(int64_t t) { length_ += t; }

  // [B, S] bool: which cached positions hold real (non-padding) tokens.
  torch::Tensor& key_valid() { return key_valid_; }

  // Keeps (and reorders) rows: rows [R] int64 -> the cache now has R rows. Used to expand
  // one prefilled prompt into n samples and to drop finished rows.
  void select_rows(const torch::Tensor& rows);

  size_t bytes() const;

 private:
  int64_t batch_, capacity_, length_ = 0;
  std::vector<torch::Tensor> keys_, values_;  // per layer [B, K, S, D]
  torch::Tensor key_valid_;                   // [B, S]
};

}  // namespace lathe
