// ModelConfig: the stories260K fixture, a Qwen2.5-0.5B-style config, Mistral defaults, RoPE
// scaling in both the old (rope_scaling) and new (rope_parameters) forms, every bad-config
// case naming its key, and to_json → from_json round trips.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/hf_config.h"
#include "tests/support/test_support.h"

namespace lathe {
namespace {

using nlohmann::json;
using lathe::testing::TempDir;

json tiny_llama() {
  return json::parse(R"({
    "model_type": "llama", "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
    "num_attention_heads": 8, "vocab_size": 512
  })");
}

// Qwen2.5-0.5B's config.json, as published.
json qwen25_05b() {
  return json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
    "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24,
    "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1", "use_cache": true, "use_sliding_window": false,
    "vocab_size": 151936
  })");
}

std::string config_error(const json& j, const std::string& source = "cfg/config.json") {
  try {
    ModelConfig::from_json(j, source);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << j.dump();
  return "";
}

TEST(HfConfig, ParsesStories260KFixture) {
  LATHE_REQUIRE_FIXTURE(dir, "stories260K-hf");
  const ModelConfig c = ModelConfig::load(dir);
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.num_hidden_layers, 5);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, "default");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_FALSE(c.pad_token_id.has_value());
  EXPECT_EQ(c.torch_dtype, "float32");
  // A path to the file itself works too.
  EXPECT_EQ(ModelConfig::load(dir + "/config.json").hidden_size, 64);
}

TEST(HfConfig, LlamaDefaultsFollowTransformers) {
  const ModelConfig c = ModelConfig::from_json(tiny_llama(), "inline");
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_EQ(c.hidden_act, "silu");
  EXPECT_FALSE(c.sliding_window.has_value());
}

TEST(HfConfig, LlamaAttentionBiasCoversQkvAndO) {
  json j = tiny_llama();
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  j["head_dim"] = 16;
  j["eos_token_id"] = {128001, 128008, 128009};
  j["pad_token_id"] = nullptr;
  const ModelConfig c = ModelConfig::from_json(j, "inline");
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_TRUE(c.mlp_bias);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_FALSE(c.pad_token_id.has_value());
}

TEST(HfConfig, Qwen25HasQkvBiasNoOBias) {
  const ModelConfig c = ModelConfig::from_json(qwen25_05b(), "qwen/config.json");
  EXPECT_EQ(c.model_type, "qwen2");
  EXPECT_EQ(c.hidden_size, 896);
  EXPECT_EQ(c.num_hidden_layers, 24);
  EXPECT_EQ(c.num_attention_heads, 14);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.intermediate_size, 4864);
  EXPECT_EQ(c.vocab_size, 151936);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.rope_theta, 1000000.0);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{151643});
  // use_sliding_window false: the window is off whatever sliding_window says.
  EXPECT_FALSE(c.sliding_window.has_value());

  // Even an attention_bias key cannot turn Qwen2's biases off (transformers ignores it).
  json j = qwen25_05b();
  j["attention_bias"] = false;
  EXPECT_TRUE(ModelConfig::from_json(j, "q").qkv_bias);
}

TEST(HfConfig, MistralDefaults) {
  json j = tiny_llama();
  j["model_type"] = "mistral";
  ModelConfig c = ModelConfig::from_json(j, "m");
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_FALSE(c.qkv_bias);
  j["sliding_window"] = nullptr;
  EXPECT_FALSE(ModelConfig::from_json(j, "m").sliding_window.has_value());
}

TEST(HfConfig, Llama3RopeScaling) {
  json j = tiny_llama();
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192},
                       {"rope_type", "llama3"}};
  const ModelConfig c = ModelConfig::from_json(j, "l3");
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
}

TEST(HfConfig, TypeIsAnAliasOfRopeType) {
  json j = tiny_llama();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  ModelConfig c = ModelConfig::from_json(j, "lin");
  EXPECT_EQ(c.rope_scaling.type, "linear");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 2.0);

  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
  c = ModelConfig::from_json(j, "yarn");
  EXPECT_EQ(c.rope_scaling.type, "yarn");
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 32768);
  EXPECT_DOUBLE_EQ(c.rope_scaling.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.beta_slow, 1.0);
  EXPECT_FALSE(c.rope_scaling.attention_factor.has_value());

  j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  EXPECT_EQ(ModelConfig::from_json(j, "dyn").rope_scaling.type, "dynamic");
}

TEST(HfConfig, NestedRopeParameters) {
  json j = tiny_llama();
  j["rope_parameters"] = {{"rope_type", "llama3"},     {"rope_theta", 500000.0},
                          {"factor", 32.0},            {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0},   {"original_max_position_embeddings", 8192}};
  ModelConfig c = ModelConfig::from_json(j, "nested");
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 32.0);

  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000.0}};
  c = ModelConfig::from_json(j, "nested");
  EXPECT_DOUBLE_EQ(c.rope_theta, 1000000.0);
  EXPECT_EQ(c.rope_scaling.type, "default");

  j["rope_parameters"] = {{"rope_type", "ntk-by-parts"}, {"rope_theta", 1.0}};
  const std::string message = config_error(j);
  EXPECT_NE(message.find("rope_parameters.rope_type"), std::string::npos) << message;
}

struct BadCase {
  const char* label;
  json config;
  std::vector<std::string> expected;
};

json with(json j, const std::string& key, json value) {
  j[key] = std::move(value);
  return j;
}
json without(json j, const std::string& key) {
  j.erase(key);
  return j;
}

TEST(HfConfig, BadConfigsNameFileAndKey) {
  const json base = tiny_llama();
  const std::vector<BadCase> cases = {
      {"not_object", json::array({1}), {"JSON object"}},
      {"missing_model_type", without(base, "model_type"), {"'model_type'", "missing"}},
      {"unsupported_model_type", with(base, "model_type", "gpt2"), {"'model_type'", "gpt2", "llama, qwen2, mistral"}},
      {"missing_hidden_size", without(base, "hidden_size"), {"'hidden_size'", "missing"}},
      {"null_hidden_size", with(base, "hidden_size", nullptr), {"'hidden_size'", "missing"}},
      {"string_hidden_size", with(base, "hidden_size", "64"), {"'hidden_size'", "integer", "\"64\""}},
      {"fractional_hidden_size", with(base, "hidden_size", 64.5), {"'hidden_size'", "integer"}},
      {"zero_layers", with(base, "num_hidden_layers", 0), {"'num_hidden_layers'", "positive"}},
      {"negative_vocab", with(base, "vocab_size", -1), {"'vocab_size'", "positive"}},
      {"missing_intermediate", without(base, "intermediate_size"), {"'intermediate_size'"}},
      {"kv_not_dividing", with(base, "num_key_value_heads", 3), {"'num_key_value_heads'", "divide"}},
      {"hidden_not_divisible", with(base, "num_attention_heads", 7), {"'hidden_size'", "head_dim"}},
      {"bool_as_string", with(base, "tie_word_embeddings", "true"), {"'tie_word_embeddings'", "true or false"}},
      {"eps_string", with(base, "rms_norm_eps", "1e-5"), {"'rms_norm_eps'", "number"}},
      {"theta_negative", with(base, "rope_theta", -1.0), {"'rope_theta'", "positive"}},
      {"eos_string", with(base, "eos_token_id", "2"), {"'eos_token_id'"}},
      {"eos_list_of_strings", with(base, "eos_token_id", {"2"}), {"'eos_token_id'"}},
      {"bos_float", with(base, "bos_token_id", 1.5), {"'bos_token_id'"}},
      {"dtype_number", with(base, "torch_dtype", 16), {"'torch_dtype'", "string"}},
      {"rope_scaling_string", with(base, "rope_scaling", "linear"), {"'rope_scaling'", "object"}},
      {"rope_unknown_type",
       with(base, "rope_scaling", {{"rope_type", "longrope"}, {"factor", 2.0}}),
       {"'rope_scaling.rope_type'", "longrope", "default, linear, dynamic, yarn, llama3"}},
      {"rope_missing_type", with(base, "rope_scaling", {{"factor", 2.0}}), {"'rope_scaling.rope_type'", "missing"}},
      {"rope_conflicting_alias",
       with(base, "rope_scaling", {{"rope_type", "linear"}, {"type", "dynamic"}, {"factor", 2.0}}),
       {"'rope_scaling.type'"}},
      {"rope_missing_factor", with(base, "rope_scaling", {{"rope_type", "linear"}}), {"'rope_scaling.factor'"}},
      {"rope_factor_string",
       with(base, "rope_scaling", {{"rope_type", "linear"}, {"factor", "2"}}),
       {"'rope_scaling.factor'", "number"}},
      {"llama3_bad_freq_factors",
       with(base, "rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 4.0},
                                   {"high_freq_factor", 1.0}}),
       {"'rope_scaling.high_freq_factor'"}},
      {"rope_parameters_not_object", with(base, "rope_parameters", 3), {"'rope_parameters'"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    const std::string message = config_error(c.config, "some/dir/config.json");
    EXPECT_NE(message.find("some/dir/config.json"), std::string::npos) << message;
    for (const auto& s : c.expected) EXPECT_NE(message.find(s), std::string::npos) << message;
  }
}

TEST(HfConfig, LoadReportsMissingAndInvalidFiles) {
  TempDir dir;
  EXPECT_THROW(ModelConfig::load(dir.path()), Error);
  write_file_atomic(dir.file("config.json"), "{\"model_type\": ");
  try {
    ModelConfig::load(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
}

void expect_same(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.model_type, b.model_type);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_DOUBLE_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_DOUBLE_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_DOUBLE_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_DOUBLE_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_DOUBLE_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.rope_scaling.original_max_position_embeddings, b.rope_scaling.original_max_position_embeddings);
  EXPECT_DOUBLE_EQ(a.rope_scaling.beta_fast, b.rope_scaling.beta_fast);
  EXPECT_DOUBLE_EQ(a.rope_scaling.beta_slow, b.rope_scaling.beta_slow);
  EXPECT_EQ(a.rope_scaling.attention_factor, b.rope_scaling.attention_factor);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.o_bias, b.o_bias);
  EXPECT_EQ(a.mlp_bias, b.mlp_bias);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.pad_token_id, b.pad_token_id);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.torch_dtype, b.torch_dtype);
  EXPECT_EQ(a.hidden_act, b.hidden_act);
}

TEST(HfConfig, ToJsonRoundTrips) {
  std::vector<json> configs;
  configs.push_back(qwen25_05b());
  json llama3 = tiny_llama();
  llama3["attention_bias"] = true;
  llama3["eos_token_id"] = {1, 2};
  llama3["pad_token_id"] = 0;
  llama3["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  configs.push_back(llama3);
  json yarn = with(qwen25_05b(), "rope_scaling",
                   {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768},
                    {"attention_factor", 1.2}});
  yarn["use_sliding_window"] = true;
  configs.push_back(yarn);
  json mistral = with(tiny_llama(), "model_type", "mistral");
  mistral["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  configs.push_back(mistral);
  configs.push_back(with(mistral, "sliding_window", nullptr));

  for (const auto& original : configs) {
    SCOPED_TRACE(original.dump());
    const ModelConfig a = ModelConfig::from_json(original, "original");
    const json written = a.to_json();
    const ModelConfig b = ModelConfig::from_json(written, "written");
    expect_same(a, b);
    EXPECT_EQ(written["num_key_value_heads"], a.num_key_value_heads);
    EXPECT_TRUE(written.contains("rope_scaling"));
  }
}

TEST(HfConfig, ToJsonUsesTransformersKeys) {
  const json j = ModelConfig::from_json(qwen25_05b(), "q").to_json();
  EXPECT_EQ(j["architectures"], json::array({"Qwen2ForCausalLM"}));
  EXPECT_TRUE(j["rope_scaling"].is_null());
  EXPECT_EQ(j["tie_word_embeddings"], true);
  EXPECT_EQ(j["use_sliding_window"], false);
  EXPECT_FALSE(j.contains("attention_bias"));

  const json l = ModelConfig::from_json(tiny_llama(), "l").to_json();
  EXPECT_EQ(l["architectures"], json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(l["attention_bias"], false);
  EXPECT_EQ(l["mlp_bias"], false);
  EXPECT_EQ(l["head_dim"], 8);
  EXPECT_TRUE(l["eos_token_id"].is_null());

  ModelConfig bad = ModelConfig::from_json(tiny_llama(), "l");
  bad.o_bias = true;  // llama cannot express q/k/v without o or vice versa
  EXPECT_THROW(bad.to_json(), Error);
  json m = with(tiny_llama(), "model_type", "mistral");
  EXPECT_EQ(ModelConfig::from_json(m, "m").to_json()["architectures"], json::array({"MistralForCausalLM"}));
}

}  // namespace
}  // namespace lathe
