#include "model/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace lathe {

KVCache::KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, torch::ScalarType dtype,
                 torch::Device device)
    : layers_(config.num_hidden_layers),
      kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim),
      options_(torch::TensorOptions().dtype(dtype).device(device)),
      batch_(batch),
      capacity_(capacity),
      rows_allocated_(batch),
      lengths_(batch, 0) {
  // Zeros, not empty(): a masked key gets probability 0, and 0 * NaN garbage would be NaN.
  for (int64_t i = 0; i < layers_; ++i) {
    keys_.push_back(torch::zeros({batch, kv_heads_, capacity, head_dim_}, options_));
    values_.push_back(torch::zeros({batch, kv_heads_, capacity, head_dim_}, options_));
  }
  key_valid_storage_ = torch::zeros({batch, capacity}, options_.dtype(torch::kBool));
  refresh_views();
}

const torch::Tensor& KVCache::positions() {
  if (positions_stale_) {
    positions_ = torch::tensor(lengths_, torch::kInt64).to(options_.device());
    positions_stale_ = false;
  }
  return positions_;
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  const int64_t t = k.size(2);
  if (length_ + t > capacity_)
    fail("KV cache overflow: " + std::to_string(length_ + t) + " positions, capacity " + std::to_string(capacity_));
  auto keys = keys_[layer].narrow(0, 0, batch_), values = values_[layer].narrow(0, 0, batch_);
  if (aligned_) {
    keys.narrow(2, length_, t).copy_(k);
    values.narrow(2, length_, t).copy_(v);
  } else {
    if (t != 1) fail("KV cache: rows of different lengths take one position per call, got " + std::to_string(t));
    // Row b's key goes to position lengths[b]: index [b, :, lengths[b], :] <- k[b, :, 0, :].
    auto rows = torch::arange(batch_, torch::TensorOptions().dtype(torch::kInt64).device(options_.device()));
    const auto& at = positions();
    keys.index_put_({rows, torch::indexing::Slice(), at}, k.select(2, 0));
    values.index_put_({rows, torch::indexing::Slice(), at}, v.select(2, 0));
  }
  return {keys.narrow(2, 0, length_ + t), values.narrow(2, 0, length_ + t)};
}

void KVCache::advance(int64_t t) {
  for (auto& l : lengths_) l += t;
  length_ += t;
  positions_stale_ = true;
}

void KVCache::mark_next_valid() {
  if (length_ >= capacity_) fail("KV cache: no room for the next position (capacity " + std::to_string(capacity_) + ")");
  if (aligned_) {
    key_valid_.narrow(1, length_, 1).fill_(true);
  } else {
    auto rows = torch::arange(batch_, torch::TensorOptions().dtype(torch::kInt64).device(options_.device()));
    key_valid_.index_put_({rows, positions()}, true);
  }
}

void KVCache::reserve(int64_t rows, int64_t positions) {
  if (rows <= rows_allocated_ && positions <= capacity_) return;
  const int64_t new_rows = std::max(rows, rows_allocated_), new_capacity = std::max(positions, capacity_);
  for (int64_t i = 0; i < layers_; ++i) {
    for (auto* store : {&keys_, &values_}) {
      auto grown = torch::zeros({new_rows, kv_heads_, new_capacity, head_dim_}, options_);
      grown.narrow(0, 0, batch_).narrow(2, 0, length_).copy_((*store)[i].narrow(0, 0, batch_).narrow(2, 0, length_));
      (*store)[i] = grown;
    }
  }
  auto valid = torch::zeros({new_rows, new_capacity}, options_.dtype(torch::kBool));
  valid.narrow(0, 0, batch_).narrow(1, 0, capacity_).copy_(key_valid_storage_.narrow(0, 0, batch_));
  key_valid_storage_ = valid;
  rows_allocated_ = new_rows;
  capacity_ = new_capacity;
  refresh_views();
}

void KVCache::append_rows(const KVCache& source, const std::vector<int64_t>& source_rows,
                          const std::vector<int64_t>& lengths) {
  if (source_rows.size() != lengths.size()) fail("KVCache::append_rows: one length per source row");
  if (source_rows.empty()) return;
  const int64_t n = static_cast<int64_t>(source_rows.size());
  const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  if (longest > source.capacity_) fail("KVCache::append_rows: a length exceeds the source's capacity");
  reserve(batch_ + n, longest + 1);
  const auto device = options_.device();
  auto index = torch::tensor(source_rows, torch::kInt64).to(device);
  for (int64_t i = 0; i < layers_; ++i) {
    keys_[i].narrow(0, batch_, n).narrow(2, 0, longest).copy_(source.keys_[i].index_select(0, index).narrow(2, 0, longest));
    values_[i].narrow(0, batch_, n).narrow(2, 0, longest).copy_(source.values_[i].index_select(0, index).narrow(2, 0, longest));
  }
  // Valid keys: the source's, and never past a row's own length (a reused row is cleared).
  auto valid = key_valid_storage_.narrow(0, batch_, n);
  valid.zero_();
  auto within = torch::arange(longest, torch::TensorOptions().dtype(torch::kInt64).device(device)).unsqueeze(0) <
                torch::tensor(lengths, torch::kInt64).to(device).unsqueeze(1);  // [n, longest]
  valid.narrow(1, 0, longest).copy_(source.key_valid_storage_.index_select(0, index).narrow(1, 0, longest) & within);
  lengths_.insert(lengths_.end(), lengths.begin(), lengths.end());
  batch_ += n;
  refresh_lengths();
  refresh_views();
}

void KVCache::copy_row(int64_t from, int64_t to) {
  const int64_t filled = lengths_[from];
  for (int64_t i = 0; i < layers_; ++i) {
    keys_[i][to].narrow(1, 0, filled).copy_(keys_[i][from].narrow(1, 0, filled));
    values_[i][to].narrow(1, 0, filled).copy_(values_[i][from].narrow(1, 0, filled));
  }
  key_valid_storage_[to].copy_(key_valid_storage_[from]);
  lengths_[to] = filled;
}

void KVCache::keep_rows(const std::vector<int64_t>& keep) {
  for (size_t i = 0; i < keep.size(); ++i) {
    if (keep[i] < 0 || keep[i] >= batch_ || (i > 0 && keep[i] <= keep[i - 1]))
      fail("KVCache::keep_rows: rows must be ascending and within the batch");
    // keep[i] >= i, so the source row has not been overwritten by an earlier move.
    if (keep[i] != static_cast<int64_t>(i)) copy_row(keep[i], static_cast<int64_t>(i));
  }
  batch_ = static_cast<int64_t>(keep.size());
  lengths_.resize(batch_);
  refresh_lengths();
  refresh_views();
}

void KVCache::refresh_lengths() {
  length_ = lengths_.empty() ? 0 : *std::max_element(lengths_.begin(), lengths_.end());
  aligned_ = std::all_of(lengths_.begin(), lengths_.end(), [&](int64_t l) { return l == length_; });
  positions_stale_ = true;
}

void KVCache::refresh_views() {
  key_valid_ = key_valid_storage_.narrow(0, 0, batch_);
  positions_stale_ = true;
}

size_t KVCache::bytes() const {
  size_t total = 0;
  for (const auto& k : keys_) total += k.numel() * k.element_size();
  return 2 * total;
}

}  // namespace lathe
