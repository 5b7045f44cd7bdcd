#include "model/model_init.h"

#include "core/error.h"

namespace lathe {

void init_random_weights(CausalLM& model, uint64_t seed, double std) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : model->named_parameters(true)) {
    const std::string& name = p.key();
    // Norm scales start at one; everything else, biases included, is drawn so that every
    // path (bias terms too) is exercised by tests on random models.
    if (name.find("norm.weight") != std::string::npos)
      p.value().fill_(1.0);
    else
      p.value().normal_(0.0, std);
  }
}

ModelConfig preset_config(const std::string& name) {
  ModelConfig c;
  if (name == "tiny") {
    c.model_type = "llama";
    c.hidden_size = 256;
    c.intermediate_size = 688;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 4;
    c.vocab_size = 8000;
    c.max_position_embeddings = 2048;
    c.rms_norm_eps = 1e-5;
    c.tie_word_embeddings = false;
  } else if (name == "qwen2.5-0.5b-shape") {
    c.model_type = "qwen2";
    c.hidden_size = 896;
    c.intermediate_size = 4864;
    c.num_hidden_layers = 24;
    c.num_attention_heads = 14;
    c.num_key_value_heads = 2;
    c.vocab_size = 151936;
    c.max_position_embeddings = 32768;
    c.rms_norm_eps = 1e-6;
    c.rope_theta = 1000000.0;
    c.tie_word_embeddings = true;
    c.qkv_bias = true;
  } else {
    fail("unknown model preset '" + name + "' (expected tiny or qwen2.5-0.5b-shape)");
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  return c;
}

}  // namespace lathe
