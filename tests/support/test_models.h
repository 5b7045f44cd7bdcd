// Small random models shared by the model, train and rl suites (apart from test_support.h so
// the suites that need no decoder do not include LibTorch's module headers).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/transformer.h"

namespace lathe::testing {

// Two layers, hidden 32, grouped-query attention (4 query heads over 2 kv heads), vocab 50.
// "qwen2" adds q/k/v biases, tied embeddings and Qwen2's rope_theta.
ModelConfig small_gqa_config(const std::string& model_type = "llama");

// A model with seeded random weights (normal, standard deviation `std`), in eval mode.
CausalLM random_test_model(const ModelConfig& config, uint64_t seed = 1, double std = 0.2);

// Greedy continuation by a full forward per token (no cache): what any cached decoder must
// reproduce.
std::vector<int32_t> greedy_by_full_forwards(CausalLM& model, std::vector<int32_t> prompt, int steps);

}  // namespace lathe::testing
