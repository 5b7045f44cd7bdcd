#include "tests/support/test_models.h"

#include <torch/torch.h>

#include "model/model_init.h"

namespace lathe::testing {

ModelConfig small_gqa_config(const std::string& model_type) {
  ModelConfig c;
  c.model_type = model_type;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 50;
  c.max_position_embeddings = 64;
  c.rms_norm_eps = 1e-5;
  if (model_type == "qwen2") {
    c.qkv_bias = true;
    c.tie_word_embeddings = true;
    c.rope_theta = 1000000.0;
  }
  return c;
}

CausalLM random_test_model(const ModelConfig& config, uint64_t seed, double std) {
  CausalLM m(config);
  init_random_weights(m, seed, std);
  m->eval();
  return m;
}

std::vector<int32_t> greedy_by_full_forwards(CausalLM& model, std::vector<int32_t> prompt, int steps) {
  torch::NoGradGuard no_grad;
  std::vector<int32_t> out;
  for (int i = 0; i < steps; ++i) {
    std::vector<int64_t> ids(prompt.begin(), prompt.end());
    auto logits = model->forward_full(torch::tensor(ids).view({1, -1}));
    const auto next = static_cast<int32_t>(logits[0][-1].argmax().item<int64_t>());
    out.push_back(next);
    prompt.push_back(next);
  }
  return out;
}

}  // namespace lathe::testing
