// Hugging Face config.json for llama, qwen2 and mistral: parsing with transformers' defaults
// and strict type checks, and writing back in transformers' form.
// Departures from transformers: the five size keys (hidden_size, intermediate_size,
// num_hidden_layers, num_attention_heads, vocab_size) are required rather than defaulted to
// some 7B model's values, and wrong JSON types are errors rather than silently kept.
// Keys lathe does not use (initializer_range, use_cache, ...) are ignored.
#include "model/hf_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"

namespace lathe {
namespace {

using nlohmann::json;

const std::vector<std::string>& supported_model_types() {
  static const std::vector<std::string> types = {"llama", "qwen2", "mistral"};
  return types;
}
const std::vector<std::string>& rope_types() {
  static const std::vector<std::string> types = {"default", "linear", "dynamic", "yarn", "llama3"};
  return types;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string describe(const json& v) {
  std::string text = v.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return std::string(v.type_name()) + " " + text;
}

// Typed access to one JSON object, naming `source` and the key (with a prefix such as
// "rope_scaling.") in every error. A null value counts as absent, as in transformers.
class Reader {
 public:
  Reader(const json& object, std::string source, std::string prefix = "")
      : j_(object), source_(std::move(source)), prefix_(std::move(prefix)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  [[noreturn]] void fail_key(const std::string& key, const std::string& why) const {
    fail(source_ + ": key '" + prefix_ + key + "' " + why);
  }

  const json& require(const char* key) const {
    if (!has(key)) fail_key(key, "is missing");
    return j_.at(key);
  }

  std::optional<int64_t> opt_int(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = j_.at(key);
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        fail_key(key, "is out of range");
      }
      return v.get<int64_t>();
    }
    // Some writers emit 4096.0; accept a float only when it is a whole number.
    if (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()) &&
        std::fabs(v.get<double>()) < 9e15) {
      return static_cast<int64_t>(v.get<double>());
    }
    fail_key(key, "must be an integer, got " + describe(v));
  }
  int64_t int_or(const char* key, int64_t fallback) const { return opt_int(key).value_or(fallback); }
  int64_t required_int(const char* key) const {
    require(key);
    return *opt_int(key);
  }
  int64_t positive_int(const char* key, std::optional<int64_t> fallback = std::nullopt) const {
    if (!has(key) && !fallback) require(key);
    const int64_t v = has(key) ? *opt_int(key) : *fallback;
    if (v <= 0) fail_key(key, "must be positive, got " + std::to_string(v));
    return v;
  }

  std::optional<double> opt_double(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = j_.at(key);
    if (!v.is_number()) fail_key(key, "must be a number, got " + describe(v));
    return v.get<double>();
  }
  double double_or(const char* key, double fallback) const { return opt_double(key).value_or(fallback); }
  double positive_double(const char* key, double fallback) const {
    const double v = double_or(key, fallback);
    if (!(v > 0) || !std::isfinite(v)) fail_key(key, "must be a positive number, got " + std::to_string(v));
    return v;
  }

  bool bool_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_boolean()) fail_key(key, "must be true or false, got " + describe(v));
    return v.get<bool>();
  }

  std::optional<std::string> opt_string(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = j_.at(key);
    if (!v.is_string()) fail_key(key, "must be a string, got " + describe(v));
    return v.get<std::string>();
  }

  // An int, or a list of ints (eos_token_id).
  std::vector<int64_t> int_list(const char* key) const {
    if (!has(key)) return {};
    const json& v = j_.at(key);
    if (!v.is_array()) return {*opt_int(key)};
    std::vector<int64_t> out;
    for (const json& item : v) {
      if (!item.is_number_integer()) fail_key(key, "must be an integer or a list of integers, got " + describe(v));
      out.push_back(item.get<int64_t>());
    }
    return out;
  }

  const json& object() const { return j_; }

 private:
  const json& j_;
  std::string source_;
  std::string prefix_;
};

// rope_scaling (or the newer rope_parameters, which holds the same keys plus rope_theta).
RopeScaling parse_rope_scaling(const Reader& r, const std::string& source) {
  RopeScaling out;
  const json& j = r.object();
  std::optional<std::string> type = r.opt_string("rope_type");
  if (const auto alias = r.opt_string("type")) {
    if (type && *type != *alias) {
      r.fail_key("type", "is \"" + *alias + "\" but rope_type is \"" + *type + "\"");
    }
    type = alias;
  }
  if (!type) r.fail_key("rope_type", "is missing (valid: " + joined(rope_types()) + ")");
  // transformers' own alias for the original Llama scheme.
  if (*type == "none") type = "default";
  const auto& valid = rope_types();
  if (std::find(valid.begin(), valid.end(), *type) == valid.end()) {
    r.fail_key(r.has("rope_type") ? "rope_type" : "type",
               "has unknown value \"" + *type + "\" (valid: " + joined(valid) + ")");
  }
  out.type = *type;

  std::set<std::string> known = {"rope_type", "type", "rope_theta"};
  if (out.type != "default") {
    known.insert("factor");
    if (!r.has("factor")) r.fail_key("factor", "is missing (rope type " + out.type + " needs it)");
    out.factor = r.positive_double("factor", 1.0);
  }
  if (out.type == "llama3") {
    known.insert({"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"});
    out.low_freq_factor = r.positive_double("low_freq_factor", 1.0);
    out.high_freq_factor = r.positive_double("high_freq_factor", 4.0);
    out.original_max_position_embeddings = r.positive_int("original_max_position_embeddings", 8192);
    if (out.high_freq_factor <= out.low_freq_factor) {
      r.fail_key("high_freq_factor", "must exceed low_freq_factor");
    }
  }
  if (out.type == "yarn") {
    known.insert({"original_max_position_embeddings", "beta_fast", "beta_slow", "attention_factor"});
    if (r.has("original_max_position_embeddings")) {
      out.original_max_position_embeddings = r.positive_int("original_max_position_embeddings");
    }
    out.beta_fast = r.positive_double("beta_fast", 32.0);
    out.beta_slow = r.positive_double("beta_slow", 1.0);
    if (r.has("attention_factor")) out.attention_factor = r.positive_double("attention_factor", 1.0);
  }
  for (const auto& item : j.items()) {
    if (!known.count(item.key())) {
      log::warn(source + ": rope key '" + item.key() + "' is not used by lathe's " + out.type + " RoPE; ignoring it");
    }
  }
  return out;
}

const char* architecture_of(const std::string& model_type) {
  if (model_type == "qwen2") return "Qwen2ForCausalLM";
  if (model_type == "mistral") return "MistralForCausalLM";
  return "LlamaForCausalLM";
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) fail(source + ": a model config must be a JSON object, got " + describe(j));
  const Reader r(j, source);
  ModelConfig c;

  const auto model_type = r.opt_string("model_type");
  if (!model_type) r.fail_key("model_type", "is missing (supported: " + joined(supported_model_types()) + ")");
  const auto& supported = supported_model_types();
  if (std::find(supported.begin(), supported.end(), *model_type) == supported.end()) {
    r.fail_key("model_type", "is \"" + *model_type + "\", which lathe does not support (supported: " +
                                 joined(supported) + ")");
  }
  c.model_type = *model_type;
  const bool llama = c.model_type == "llama";
  const bool qwen2 = c.model_type == "qwen2";
  const bool mistral = c.model_type == "mistral";

  c.hidden_size = r.positive_int("hidden_size");
  c.intermediate_size = r.positive_int("intermediate_size");
  c.num_hidden_layers = r.positive_int("num_hidden_layers");
  c.num_attention_heads = r.positive_int("num_attention_heads");
  c.vocab_size = r.positive_int("vocab_size");
  c.num_key_value_heads = r.positive_int("num_key_value_heads", c.num_attention_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    r.fail_key("num_key_value_heads", "(" + std::to_string(c.num_key_value_heads) +
                                          ") must divide num_attention_heads (" +
                                          std::to_string(c.num_attention_heads) + ")");
  }
  if (r.has("head_dim")) {
    c.head_dim = r.positive_int("head_dim");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      r.fail_key("hidden_size", "(" + std::to_string(c.hidden_size) + ") is not divisible by num_attention_heads (" +
                                    std::to_string(c.num_attention_heads) + "); set head_dim explicitly");
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }

  const int64_t default_max_positions = qwen2 ? 32768 : mistral ? 4096 * 32 : 2048;
  c.max_position_embeddings = r.positive_int("max_position_embeddings", default_max_positions);
  c.rms_norm_eps = r.positive_double("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", false);
  c.hidden_act = r.opt_string("hidden_act").value_or("silu");
  // transformers >= 4.56 writes "dtype" where older versions wrote "torch_dtype".
  c.torch_dtype = r.opt_string("torch_dtype").value_or(r.opt_string("dtype").value_or("float32"));

  if (llama) {
    c.qkv_bias = c.o_bias = r.bool_or("attention_bias", false);
    c.mlp_bias = r.bool_or("mlp_bias", false);
  } else if (qwen2) {
    // Qwen2's attention hard-codes bias on q/k/v and none on o; its MLP has none.
    c.qkv_bias = true;
    c.o_bias = false;
  } else if (mistral) {
    // transformers' Mistral has no bias anywhere and ignores these keys; lathe says so.
    for (const char* key : {"attention_bias", "mlp_bias"}) {
      if (r.bool_or(key, false)) log::warn(source + ": " + key + " is ignored for mistral (as transformers does)");
    }
  }

  if (mistral) {
    // MistralConfig's default window is 4096; an explicit null turns it off.
    if (!j.contains("sliding_window")) c.sliding_window = 4096;
    else if (r.has("sliding_window")) c.sliding_window = r.positive_int("sliding_window");
  } else if (qwen2 && r.bool_or("use_sliding_window", false) && r.has("sliding_window")) {
    c.sliding_window = r.positive_int("sliding_window");
  }

  if (r.has("bos_token_id")) c.bos_token_id = r.opt_int("bos_token_id");
  c.eos_token_ids = r.int_list("eos_token_id");
  if (r.has("pad_token_id")) c.pad_token_id = r.opt_int("pad_token_id");

  // Newer transformers nest RoPE settings in rope_parameters; older ones use rope_theta and
  // rope_scaling at the top level.
  if (r.has("rope_parameters")) {
    const json& nested = j.at("rope_parameters");
    if (!nested.is_object()) r.fail_key("rope_parameters", "must be an object, got " + describe(nested));
    const Reader rp(nested, source, "rope_parameters.");
    c.rope_theta = rp.positive_double("rope_theta", r.positive_double("rope_theta", 10000.0));
    c.rope_scaling = rp.has("rope_type") || rp.has("type") ? parse_rope_scaling(rp, source) : RopeScaling{};
  } else {
    c.rope_theta = r.positive_double("rope_theta", 10000.0);
    if (r.has("rope_scaling")) {
      const json& scaling = j.at("rope_scaling");
      if (!scaling.is_object()) r.fail_key("rope_scaling", "must be an object or null, got " + describe(scaling));
      c.rope_scaling = parse_rope_scaling(Reader(scaling, source, "rope_scaling."), source);
    }
  }
  return c;
}

ModelConfig ModelConfig::load(const std::string& dir_or_file) {
  namespace fs = std::filesystem;
  const std::string path =
      fs::is_directory(dir_or_file) ? (fs::path(dir_or_file) / "config.json").string() : dir_or_file;
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail(path + ": not valid JSON: " + e.what());
  }
  return from_json(j, path);
}

json ModelConfig::to_json() const {
  const bool llama = model_type == "llama";
  const bool qwen2 = model_type == "qwen2";
  const bool mistral = model_type == "mistral";
  if (!llama && !qwen2 && !mistral) {
    fail("model_type \"" + model_type + "\" cannot be saved (supported: " + joined(supported_model_types()) + ")");
  }
  // The biases each architecture can express; anything else would load differently elsewhere.
  const bool biases_ok = llama ? qkv_bias == o_bias : qwen2 ? (qkv_bias && !o_bias && !mlp_bias)
                                                            : (!qkv_bias && !o_bias && !mlp_bias);
  if (!biases_ok) {
    fail("model_type " + model_type + " cannot express qkv_bias=" + std::to_string(qkv_bias) +
         ", o_bias=" + std::to_string(o_bias) + ", mlp_bias=" + std::to_string(mlp_bias));
  }

  json j = {
      {"architectures", {architecture_of(model_type)}},
      {"model_type", model_type},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"head_dim", head_dim},
      {"vocab_size", vocab_size},
      {"max_position_embeddings", max_position_embeddings},
      {"rms_norm_eps", rms_norm_eps},
      {"rope_theta", rope_theta},
      {"tie_word_embeddings", tie_word_embeddings},
      {"hidden_act", hidden_act},
      {"torch_dtype", torch_dtype},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
  };
  if (llama) {
    j["attention_bias"] = qkv_bias;
    j["mlp_bias"] = mlp_bias;
  }
  if (qwen2) {
    j["use_sliding_window"] = sliding_window.has_value();
    j["sliding_window"] = sliding_window ? json(*sliding_window) : json(nullptr);
    j["max_window_layers"] = num_hidden_layers;
  }
  if (mistral) j["sliding_window"] = sliding_window ? json(*sliding_window) : json(nullptr);

  j["bos_token_id"] = bos_token_id ? json(*bos_token_id) : json(nullptr);
  j["pad_token_id"] = pad_token_id ? json(*pad_token_id) : json(nullptr);
  if (eos_token_ids.empty()) j["eos_token_id"] = nullptr;
  else if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  else j["eos_token_id"] = eos_token_ids;

  if (rope_scaling.type == "default") {
    j["rope_scaling"] = nullptr;
  } else {
    json s = {{"rope_type", rope_scaling.type}, {"factor", rope_scaling.factor}};
    if (rope_scaling.type == "llama3") {
      s["low_freq_factor"] = rope_scaling.low_freq_factor;
      s["high_freq_factor"] = rope_scaling.high_freq_factor;
      s["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
    }
    if (rope_scaling.type == "yarn") {
      s["beta_fast"] = rope_scaling.beta_fast;
      s["beta_slow"] = rope_scaling.beta_slow;
      if (rope_scaling.original_max_position_embeddings > 0) {
        s["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
      }
      if (rope_scaling.attention_factor) s["attention_factor"] = *rope_scaling.attention_factor;
    }
    j["rope_scaling"] = s;
  }
  return j;
}

}  // namespace lathe
