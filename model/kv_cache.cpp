#include "model/kv_cache.h"

#include "core/error.h"

namespace lathe {

KVCache::KVCache(const ModelConfig& config, int64_t batch, int64_t capacity, torch::ScalarType dtype,
                 torch::Device device)
    : batch_(batch), capacity_(capacity) {
  auto options = torch::TensorOptions().dtype(dtype).device(device);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    keys_.push_back(torch::zeros({batch, config.num_key_value_heads, capacity, config.head_dim}, options));
    values_.push_back(torch::zeros({batch, config.num_key_value_heads, capacity, config.head_dim}, options));
  }
  key_valid_ = torch::zeros({batch, capacity}, torch::TensorOptions().dtype(torch::kBool).device(device));
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(int64_t layer, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  const int64_t t = k.size(2);
  if (length_ + t > capacity_)
    fail("KV cache overflow: " + std::to_string(length_ + t) + " positions, capacity " + std::to_string(capacity_));
  keys_[layer].narrow(2, length_, t).copy_(k);
  values_[layer].narrow(2, length_, t).copy_(v);
  return {keys_[layer].narrow(2, 0, length_ + t), values_[layer].narrow(2, 0, length_ + t)};
}

void KVCache::select_rows(const torch::Tensor& rows) {
  auto index = rows.to(key_valid_.device());
  for (auto& k : keys_) k = k.index_select(0, index);
  for (auto& v : values_) v = v.index_select(0, index);
  key_valid_ = key_valid_.index_select(0, index);
  batch_ = rows.size(0);
}

size_t KVCache::bytes() const {
  size_t total = 0;
  for (const auto& k : keys_) total += k.numel() * k.element_size();
  return 2 * total;
}

}  // namespace lathe
