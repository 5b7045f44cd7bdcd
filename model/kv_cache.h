// Key/value cache, preallocated per layer so a decode step never reallocates.
// Each row has its own filled length, so sequences can join and leave a running batch
// (continuous batching): a step writes every row's new key at that row's own length, and
// attention spans the longest row with key_valid masking what a shorter row has not filled.
// When every row has the same length (one batch prefilled together) the write is one slice.
// Storage grows on demand (reserve) and rows are compacted in place when some finish.
//
// Legend: B rows in use, R rows allocated, K kv heads, S capacity (positions), D head_dim.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "model/hf_config.h"

namespace lathe {

class KVCache {
 public:
  KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, torch::ScalarType dtype,
          torch::Device device);

  int64_t batch() const { return batch_; }        // rows in use
  int64_t capacity() const { return capacity_; }  // positions a row holds before reserve() grows it
  int64_t length() const { return length_; }      // the longest row's filled positions
  const std::vector<int64_t>& row_lengths() const { return lengths_; }
  bool aligned() const { return aligned_; }       // every row's length equals length()
  // [B] int64 on the cache's device: each row's length, i.e. where its next key goes.
  const torch::Tensor& positions();

  // Writes k, v [B, K, T, D] of `layer` and returns the views [B, K, length + T, D] attention
  // reads. Aligned rows take T positions at [length, length + T); otherwise T must be 1 and
  // row b writes at its own length. Lengths move on only with advance(T), after the last layer.
  std::pair<torch::Tensor, torch::Tensor> append(int64_t layer, const torch::Tensor& k, const torch::Tensor& v);
  void advance(int64_t t);

  // [B, S] bool: which cached positions hold real tokens (the caller marks them).
  torch::Tensor& key_valid() { return key_valid_; }
  // Marks each row's next position (its length) valid, before a decode step.
  void mark_next_valid();

  // Grows storage to hold `rows` rows of `positions` positions (never shrinks).
  void reserve(int64_t rows, int64_t positions);
  // Appends copies of `source` rows (repeats allowed) after the rows in use; row i gets
  // lengths[i] filled positions (and their key_valid). Storage grows as needed.
  void append_rows(const KVCache& source, const std::vector<int64_t>& source_rows,
                   const std::vector<int64_t>& lengths);
  // Keeps rows `keep` (ascending), moving them down in place; the cache then has keep.size() rows.
  void keep_rows(const std::vector<int64_t>& keep);

  size_t bytes() const;

 private:
  void copy_row(int64_t from, int64_t to);
  void refresh_views();
  void refresh_lengths();

  const int64_t layers_, kv_heads_, head_dim_;
  const torch::TensorOptions options_;
  int64_t batch_, capacity_, rows_allocated_, length_ = 0;
  bool aligned_ = true;
  std::vector<int64_t> lengths_;               // [B] on the host
  torch::Tensor positions_;                    // [B] on the device, rebuilt when lengths change
  bool positions_stale_ = true;
  std::vector<torch::Tensor> keys_, values_;   // per layer [R, K, S, D]
  torch::Tensor key_valid_storage_;            // [R, S]
  torch::Tensor key_valid_;                    // its first B rows
};

}  // namespace lathe
