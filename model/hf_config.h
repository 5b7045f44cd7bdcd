// Hugging Face config.json for the Llama family (model_type llama, qwen2, mistral).
// Field names and defaults follow transformers; ../shared/docs/INTEROP.md lists them.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lathe {

struct RopeScaling {
  std::string type = "default";  // default | linear | dynamic | yarn | llama3
  double factor = 1.0;
  double low_freq_factor = 1.0;    // llama3
  double high_freq_factor = 4.0;   // llama3
  int64_t original_max_position_embeddings = 0;  // llama3, yarn (0 = max_position_embeddings)
  double beta_fast = 32.0;         // yarn
  double beta_slow = 1.0;          // yarn
  std::optional<double> attention_factor;  // yarn (default 0.1 ln(factor) + 1)
};

struct ModelConfig {
  std::string model_type = "llama";
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;   // defaults to num_attention_heads
  int64_t head_dim = 0;              // defaults to hidden_size / num_attention_heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;             // llama attention_bias, always true for qwen2
  bool o_bias = false;               // llama attention_bias only
  bool mlp_bias = false;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // config's eos_token_id (int or list)
  std::optional<int64_t> pad_token_id;
  std::optional<int64_t> sliding_window;
  std::string torch_dtype = "float32";
  std::string hidden_act = "silu";

  // Parses and validates; `source` (a path) is named in errors with the offending key.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
  // Reads DIR/config.json (or a config.json path).
  static ModelConfig load(const std::string& dir_or_file);
  // Serialises in transformers' form (for checkpoints lathe writes).
  nlohmann::json to_json() const;
};

}  // namespace lathe
