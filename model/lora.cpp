// LoRA adapters on the seven projection linears, saved and loaded in PEFT's layout.
// Departures from PEFT: adapters are kept in f32 on a reduced-precision base (PEFT's
// autocast_adapter_dtype default, made unconditional); regex target_modules, rank_pattern,
// alpha_pattern, DoRA and biases are refused rather than half-supported, since vLLM refuses
// most of them too; modules_to_save (embed_tokens, lm_head only) load only when the caller
// asks (training and merging), and then overwrite the model's own weights. Loading is strict where PEFT only warns: every tensor
// must name a lora_A/lora_B of a module the model has, with the shape the config implies.
#include "model/lora.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include <ATen/CPUGeneratorImpl.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/safetensors.h"

namespace lathe {
namespace fs = std::filesystem;
using nlohmann::json;

double LoraConfig::scale() const {
  return use_rslora ? alpha / std::sqrt(double(r)) : alpha / double(r);
}

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names{"q_proj", "k_proj", "v_proj", "o_proj",
                                              "gate_proj", "up_proj", "down_proj"};
  return names;
}

const std::vector<std::string>& lora_modules_to_save_names() {
  static const std::vector<std::string> names{"embed_tokens", "lm_head"};
  return names;
}

namespace {

const char* kPeftPrefix = "base_model.model.";

// "embed_tokens" -> its Hugging Face module path.
std::string module_to_save_path(const std::string& name) { return name == "embed_tokens" ? "model.embed_tokens" : name; }

torch::Tensor module_to_save_weight(CausalLM& model, const std::string& name, const std::string& source) {
  if (name == "embed_tokens") return model->model->embed_tokens->weight;
  if (name == "lm_head") {
    if (!model->lm_head)
      fail(source + ": modules_to_save lists lm_head, but this model ties lm_head to embed_tokens; list "
                    "embed_tokens instead");
    return model->lm_head->weight;
  }
  fail(source + ": modules_to_save has '" + name + "'; lathe trains only embed_tokens and lm_head as whole modules");
}

// One linear LoRA may sit on, with its Hugging Face module path.
struct TargetModule {
  std::string path;        // "model.layers.3.self_attn.q_proj"
  int64_t layer = 0;
  std::string short_name;  // "q_proj"
  Linear linear{nullptr};
};

std::vector<TargetModule> all_targets(CausalLM& model) {
  std::vector<TargetModule> out;
  const auto& layers = model->model->layer_list;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string prefix = "model.layers." + std::to_string(i) + ".";
    auto& attn = layers[i]->self_attn;
    auto& mlp = layers[i]->mlp;
    const std::pair<const char*, Linear> attn_linears[] = {
        {"q_proj", attn->q_proj}, {"k_proj", attn->k_proj}, {"v_proj", attn->v_proj}, {"o_proj", attn->o_proj}};
    for (const auto& [n, l] : attn_linears) out.push_back({prefix + "self_attn." + n, int64_t(i), n, l});
    const std::pair<const char*, Linear> mlp_linears[] = {
        {"gate_proj", mlp->gate_proj}, {"up_proj", mlp->up_proj}, {"down_proj", mlp->down_proj}};
    for (const auto& [n, l] : mlp_linears) out.push_back({prefix + "mlp." + n, int64_t(i), n, l});
  }
  return out;
}

std::string join(const std::vector<std::string>& items, size_t limit = 8) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < limit; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > limit) out += ", ... (" + std::to_string(items.size()) + " in all)";
  return out;
}

std::string shape_text(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool is_lora_parameter(const std::string& key) {
  return key.find(".lora_A.") != std::string::npos || key.find(".lora_B.") != std::string::npos;
}

bool is_valid_target(const std::string& n) {
  const auto& v = lora_target_names();
  return std::find(v.begin(), v.end(), n) != v.end();
}

std::string valid_targets_text() { return join(lora_target_names(), 100); }

void check_adapter_name(const std::string& name) {
  if (name.empty() || name.find('.') != std::string::npos)
    fail("LoRA adapter name '" + name + "' is invalid: it must be non-empty and contain no '.'");
}

// Validates a config for this model and returns the modules it selects (never empty).
std::vector<TargetModule> select_targets(CausalLM& model, const LoraConfig& config, const std::string& source) {
  if (config.r <= 0) fail(source + ": r must be positive, got " + std::to_string(config.r));
  if (!(config.dropout >= 0.0 && config.dropout < 1.0))
    fail(source + ": lora_dropout must be in [0, 1), got " + std::to_string(config.dropout));
  if (config.target_modules.empty())
    fail(source + ": target_modules is empty; choose from " + valid_targets_text());
  for (const auto& t : config.target_modules)
    if (!is_valid_target(t)) fail(source + ": unknown target module '" + t + "'; valid: " + valid_targets_text());
  const int64_t n_layers = model->config().num_hidden_layers;
  for (int64_t l : config.layers_to_transform)
    if (l < 0 || l >= n_layers)
      fail(source + ": layers_to_transform has layer " + std::to_string(l) + " but the model has " +
           std::to_string(n_layers) + " layers (0.." + std::to_string(n_layers - 1) + ")");
  std::vector<TargetModule> out;
  for (auto& t : all_targets(model)) {
    const auto& tm = config.target_modules;
    const auto& lt = config.layers_to_transform;
    if (std::find(tm.begin(), tm.end(), t.short_name) == tm.end()) continue;
    if (!lt.empty() && std::find(lt.begin(), lt.end(), t.layer) == lt.end()) continue;
    out.push_back(t);
  }
  if (out.empty()) fail(source + ": LoRA target_modules [" + join(config.target_modules) + "] match no module of the model");
  return out;
}

// Adapters live in f32 on a bf16/f16 base so optimizer updates are not lost to rounding.
torch::ScalarType adapter_dtype(const torch::Tensor& base_weight) {
  const auto t = base_weight.scalar_type();
  return (t == torch::kBFloat16 || t == torch::kFloat16) ? torch::kFloat32 : t;
}

void freeze_base(CausalLM& model) {
  for (auto& p : model->named_parameters(true))
    if (!is_lora_parameter(p.key())) p.value().set_requires_grad(false);
}

void require_adapter(CausalLM& model, const std::string& name) {
  auto names = adapter_names(model);
  if (std::find(names.begin(), names.end(), name) == names.end())
    fail("no LoRA adapter named '" + name + "' (loaded: " + (names.empty() ? "none" : join(names)) + ")");
}

void append_active(CausalLM& model, const std::string& name) {
  auto active = active_adapters(model);
  if (std::find(active.begin(), active.end(), name) == active.end()) active.push_back(name);
  set_active_adapters(model, active);
}

void drop_from_active(CausalLM& model, const std::string& name) {
  for (auto& t : all_targets(model)) {
    auto& a = t.linear->active;
    a.erase(std::remove(a.begin(), a.end(), name), a.end());
  }
}

}  // namespace

std::vector<torch::Tensor> modules_to_save_weights(CausalLM& model, const std::vector<std::string>& names) {
  std::vector<torch::Tensor> out;
  for (const auto& n : names) out.push_back(module_to_save_weight(model, n, "LoRA modules_to_save"));
  return out;
}

std::vector<std::string> adapter_names(CausalLM& model) {
  std::set<std::string> names;
  for (auto& t : all_targets(model))
    for (const auto& a : t.linear->adapters) names.insert(a.first);
  return {names.begin(), names.end()};
}

std::vector<torch::Tensor> lora_parameters(CausalLM& model, const std::string& name) {
  require_adapter(model, name);
  std::vector<torch::Tensor> params;
  for (auto& t : all_targets(model)) {
    auto it = t.linear->adapters.find(name);
    if (it == t.linear->adapters.end()) continue;
    params.push_back(it->second.A);
    params.push_back(it->second.B);
  }
  return params;
}

std::vector<torch::Tensor> add_lora_adapter(CausalLM& model, const std::string& name, const LoraConfig& config,
                                            uint64_t seed) {
  check_adapter_name(name);
  auto existing = adapter_names(model);
  if (std::find(existing.begin(), existing.end(), name) != existing.end())
    fail("LoRA adapter '" + name + "' already exists; remove it first or choose another name");
  auto targets = select_targets(model, config, "LoRA adapter '" + name + "'");
  freeze_base(model);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<torch::Tensor> params;
  for (auto& t : targets) {
    auto& lin = t.linear;
    const auto dtype = adapter_dtype(lin->weight);
    // Kaiming-uniform with a = sqrt(5): gain sqrt(1/3) * sqrt(3 / in) = 1 / sqrt(in).
    const double bound = 1.0 / std::sqrt(double(lin->in_features()));
    auto A = torch::empty({config.r, lin->in_features()}, torch::kFloat32).uniform_(-bound, bound, gen);
    A = A.to(lin->weight.device(), dtype);
    auto B = torch::zeros({lin->out_features(), config.r}, torch::dtype(dtype).device(lin->weight.device()));
    lin->add_adapter(name, A, B, config.scale(), config.dropout);
    params.push_back(lin->adapters.at(name).A);
    params.push_back(lin->adapters.at(name).B);
  }
  append_active(model, name);
  return params;
}

void set_active_adapters(CausalLM& model, const std::vector<std::string>& names) {
  for (const auto& n : names) require_adapter(model, n);
  std::vector<std::string> unique;
  for (const auto& n : names)
    if (std::find(unique.begin(), unique.end(), n) == unique.end()) unique.push_back(n);
  for (auto& t : all_targets(model)) t.linear->active = unique;
}

std::vector<std::string> active_adapters(CausalLM& model) {
  auto targets = all_targets(model);
  return targets.empty() ? std::vector<std::string>{} : targets.front().linear->active;
}

AdaptersDisabled::AdaptersDisabled(CausalLM& model) : model_(model), saved_(active_adapters(model)) {
  set_active_adapters(model_, {});
}

AdaptersDisabled::~AdaptersDisabled() {
  // Restore directly: an adapter removed inside the scope must not make a destructor throw.
  auto names = adapter_names(model_);
  std::vector<std::string> keep;
  for (const auto& n : saved_)
    if (std::find(names.begin(), names.end(), n) != names.end()) keep.push_back(n);
  for (auto& t : all_targets(model_)) t.linear->active = keep;
}

std::shared_ptr<const RowAdapterGroups> row_adapter_groups(CausalLM& model,
                                                           const std::vector<std::string>& adapter_per_row) {
  auto groups = std::make_shared<RowAdapterGroups>();
  groups->batch = static_cast<int64_t>(adapter_per_row.size());
  std::map<std::string, std::vector<int64_t>> rows_by_adapter;  // "" = the active adapters
  for (size_t b = 0; b < adapter_per_row.size(); ++b) rows_by_adapter[adapter_per_row[b]].push_back(int64_t(b));
  const auto device = model->device();
  for (auto& [name, rows] : rows_by_adapter) {
    std::vector<std::string> applied;
    if (name.empty()) {
      applied = active_adapters(model);
    } else {
      require_adapter(model, name);
      applied = {name};
    }
    if (applied.empty()) continue;
    RowAdapterGroups::Group group;
    group.adapters = std::move(applied);
    group.all_rows = static_cast<int64_t>(rows.size()) == groups->batch;
    group.rows = torch::tensor(rows, torch::kInt64).to(device);
    groups->groups.push_back(std::move(group));
  }
  return groups;
}

RowAdapterScope::RowAdapterScope(CausalLM& model, std::shared_ptr<const RowAdapterGroups> groups) : model_(model) {
  for (auto& t : all_targets(model_)) t.linear->row_adapters = groups;
}

RowAdapterScope::~RowAdapterScope() {
  for (auto& t : all_targets(model_)) t.linear->row_adapters.reset();
}

void merge_adapter(CausalLM& model, const std::string& name) {
  require_adapter(model, name);
  auto targets = all_targets(model);
  for (auto& t : targets)
    if (t.linear->has_adapter(name) && t.linear->adapters.at(name).merged)
      fail("LoRA adapter '" + name + "' is already merged");
  for (auto& t : targets)
    if (t.linear->has_adapter(name)) t.linear->merge_adapter(name);
}

void unmerge_adapter(CausalLM& model, const std::string& name) {
  require_adapter(model, name);
  auto targets = all_targets(model);
  for (auto& t : targets)
    if (t.linear->has_adapter(name) && !t.linear->adapters.at(name).merged)
      fail("LoRA adapter '" + name + "' is not merged");
  for (auto& t : targets)
    if (t.linear->has_adapter(name)) t.linear->unmerge_adapter(name);
}

void remove_adapter(CausalLM& model, const std::string& name) {
  require_adapter(model, name);
  for (auto& t : all_targets(model)) {
    if (!t.linear->has_adapter(name)) continue;
    if (t.linear->adapters.at(name).merged) t.linear->unmerge_adapter(name);
    t.linear->remove_adapter(name);
  }
  drop_from_active(model, name);
}

void merge_and_unload_adapter(CausalLM& model, const std::string& name) {
  require_adapter(model, name);
  for (auto& t : all_targets(model)) {
    if (!t.linear->has_adapter(name)) continue;
    if (!t.linear->adapters.at(name).merged) t.linear->merge_adapter(name);
    t.linear->remove_adapter(name);  // keeps W as merged
  }
  drop_from_active(model, name);
}

// ---------------------------------------------------------------------------------------
// PEFT folder IO

namespace {

// PEFT writes lora_alpha as an int when it is one; so do we (vLLM and PEFT read either).
json number_json(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return json(int64_t(v));
  return json(v);
}

}  // namespace

void save_peft_adapter(CausalLM& model, const std::string& name, const LoraConfig& config, const std::string& dir) {
  require_adapter(model, name);
  NamedTensors tensors;
  std::set<std::string> targets_present;
  std::set<int64_t> layers_present;
  const auto targets = all_targets(model);
  for (const auto& t : targets) {
    auto it = t.linear->adapters.find(name);
    if (it == t.linear->adapters.end()) continue;
    const LoraPair& lora = it->second;
    if (lora.A.size(0) != config.r)
      fail("save_peft_adapter: config r = " + std::to_string(config.r) + " but adapter '" + name + "' has rank " +
           std::to_string(lora.A.size(0)) + " on " + t.path);
    if (std::fabs(lora.scale - config.scale()) > 1e-9 * std::max(1.0, std::fabs(lora.scale)))
      fail("save_peft_adapter: config lora_alpha/use_rslora give scale " + std::to_string(config.scale()) +
           " but adapter '" + name + "' runs with scale " + std::to_string(lora.scale) + " on " + t.path);
    tensors.emplace_back(kPeftPrefix + t.path + ".lora_A.weight", lora.A.detach().to(torch::kCPU).contiguous());
    tensors.emplace_back(kPeftPrefix + t.path + ".lora_B.weight", lora.B.detach().to(torch::kCPU).contiguous());
    targets_present.insert(t.short_name);
    layers_present.insert(t.layer);
  }
  for (const auto& m : config.modules_to_save)
    tensors.emplace_back(kPeftPrefix + module_to_save_path(m) + ".weight",
                         module_to_save_weight(model, m, dir).detach().to(torch::kCPU).contiguous());
  // The file describes the tensors it holds: targets and layers come from the modules that
  // carry the adapter (they equal the config's for an adapter made by add_lora_adapter).
  json layers = nullptr;
  if ((int64_t)layers_present.size() != model->config().num_hidden_layers)
    layers = std::vector<int64_t>(layers_present.begin(), layers_present.end());

  json c = json::object();  // std::map-backed: keys come out sorted, as PEFT writes them
  c["alpha_pattern"] = json::object();
  c["auto_mapping"] = nullptr;
  c["base_model_name_or_path"] = config.base_model_name_or_path.empty() ? json(nullptr)
                                                                         : json(config.base_model_name_or_path);
  c["bias"] = "none";
  c["exclude_modules"] = nullptr;
  c["fan_in_fan_out"] = false;
  c["inference_mode"] = true;
  c["init_lora_weights"] = true;
  c["layer_replication"] = nullptr;
  c["layers_pattern"] = nullptr;
  c["layers_to_transform"] = layers;
  c["loftq_config"] = json::object();
  c["lora_alpha"] = number_json(config.alpha);
  c["lora_dropout"] = config.dropout;
  c["megatron_config"] = nullptr;
  c["megatron_core"] = "megatron.core";
  c["modules_to_save"] = config.modules_to_save.empty() ? json(nullptr) : json(config.modules_to_save);
  c["peft_type"] = "LORA";
  c["r"] = config.r;
  c["rank_pattern"] = json::object();
  c["revision"] = nullptr;
  c["target_modules"] = std::vector<std::string>(targets_present.begin(), targets_present.end());
  c["task_type"] = "CAUSAL_LM";
  c["use_dora"] = false;
  c["use_rslora"] = config.use_rslora;

  // Written beside the destination and renamed over it: a crash leaves the old adapter.
  const std::string tmp = (fs::path(dir).lexically_normal().string()) + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) fail(tmp + ": cannot create folder: " + ec.message());
  write_file_atomic(tmp + "/adapter_config.json", c.dump(2) + "\n");
  save_safetensors(tmp + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  replace_directory_atomic(tmp, fs::path(dir).lexically_normal().string());
}

namespace {

// Reads adapter_config.json strictly; errors name the file and the key.
LoraConfig parse_adapter_config(const std::string& path, bool allow_modules_to_save) {
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail(path + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) fail(path + ": expected a JSON object");
  auto key_fail = [&](const std::string& key, const std::string& why) { fail(path + ": key '" + key + "' " + why); };
  auto require = [&](const char* key) -> const json& {
    if (!j.contains(key)) key_fail(key, "is missing");
    return j.at(key);
  };
  auto present = [&](const char* key) { return j.contains(key) && !j.at(key).is_null(); };

  const json& peft_type = require("peft_type");
  if (peft_type != "LORA") key_fail("peft_type", "is " + peft_type.dump() + "; lathe loads only \"LORA\" adapters");
  LoraConfig config;
  const json& r = require("r");
  if (!r.is_number_integer() || r.get<int64_t>() <= 0) key_fail("r", "must be a positive integer, got " + r.dump());
  config.r = r.get<int64_t>();
  const json& alpha = require("lora_alpha");
  if (!alpha.is_number()) key_fail("lora_alpha", "must be a number, got " + alpha.dump());
  config.alpha = alpha.get<double>();
  const json& targets = require("target_modules");
  if (targets.is_string())
    key_fail("target_modules", "is a regex string (" + targets.dump() + "); lathe needs a list of names from " +
                                   valid_targets_text());
  if (!targets.is_array() || targets.empty())
    key_fail("target_modules", "must be a non-empty list of names from " + valid_targets_text());
  config.target_modules.clear();  // LoraConfig's default targets must not leak in
  for (const auto& t : targets) {
    if (!t.is_string() || !is_valid_target(t.get<std::string>()))
      key_fail("target_modules", "has " + t.dump() + "; valid: " + valid_targets_text());
    config.target_modules.push_back(t.get<std::string>());
  }
  std::sort(config.target_modules.begin(), config.target_modules.end());
  if (present("lora_dropout")) {
    if (!j["lora_dropout"].is_number()) key_fail("lora_dropout", "must be a number");
    config.dropout = j["lora_dropout"].get<double>();
  }
  if (present("use_rslora")) {
    if (!j["use_rslora"].is_boolean()) key_fail("use_rslora", "must be true or false");
    config.use_rslora = j["use_rslora"].get<bool>();
  }
  if (present("bias") && j["bias"] != "none")
    key_fail("bias", "is " + j["bias"].dump() + "; only \"none\" is supported (as in vLLM)");
  if (present("use_dora") && j["use_dora"] != false) key_fail("use_dora", "is true; DoRA adapters are not supported");
  if (present("fan_in_fan_out") && j["fan_in_fan_out"] != false)
    key_fail("fan_in_fan_out", "is true; Llama-family linears store [out, in]");
  if (present("modules_to_save") && !j["modules_to_save"].empty()) {
    if (!allow_modules_to_save)
      key_fail("modules_to_save", "is " + j["modules_to_save"].dump() +
                                      "; vLLM cannot load an adapter that saves whole modules (merge it with `lathe "
                                      "merge` and serve the merged model)");
    const auto& valid = lora_modules_to_save_names();
    if (!j["modules_to_save"].is_array()) key_fail("modules_to_save", "must be a list of module names");
    for (const auto& m : j["modules_to_save"]) {
      if (!m.is_string() || std::find(valid.begin(), valid.end(), m.get<std::string>()) == valid.end())
        key_fail("modules_to_save", "has " + m.dump() + "; lathe loads only embed_tokens and lm_head");
      config.modules_to_save.push_back(m.get<std::string>());
    }
  }
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (present(k) && !j[k].empty()) key_fail(k, "is not empty; per-module ranks/alphas are not supported");
  if (present("layers_to_transform")) {
    const json& l = j["layers_to_transform"];
    if (l.is_number_integer()) {
      config.layers_to_transform.push_back(l.get<int64_t>());
    } else if (l.is_array()) {
      for (const auto& v : l) {
        if (!v.is_number_integer()) key_fail("layers_to_transform", "must hold integers, got " + v.dump());
        config.layers_to_transform.push_back(v.get<int64_t>());
      }
    } else {
      key_fail("layers_to_transform", "must be null, an integer or a list of integers");
    }
  }
  if (present("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
    config.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();
  return config;
}

// "model.layers.0.self_attn.q_proj" and 'A'/'B' from a PEFT key, with or without the
// "base_model.model." prefix and an adapter-name infix ("lora_A.default.weight").
// Returns false for any tensor that is not a lora_A/lora_B weight.
bool parse_lora_key(const std::string& key, std::string& module, char& which) {
  std::string k = key;
  if (k.rfind(kPeftPrefix, 0) == 0) k = k.substr(std::string(kPeftPrefix).size());
  const std::string suffix = ".weight";
  if (k.size() <= suffix.size() || k.compare(k.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  std::string body = k.substr(0, k.size() - suffix.size());
  auto ends_with_factor = [&](const std::string& s) -> char {
    for (char w : {'A', 'B'}) {
      const std::string f = std::string(".lora_") + w;
      if (s.size() > f.size() && s.compare(s.size() - f.size(), f.size(), f) == 0) return w;
    }
    return 0;
  };
  char w = ends_with_factor(body);
  if (!w) {
    const auto dot = body.rfind('.');
    if (dot == std::string::npos) return false;
    body = body.substr(0, dot);  // drop the adapter-name infix
    w = ends_with_factor(body);
    if (!w) return false;
  }
  module = body.substr(0, body.size() - std::string(".lora_A").size());
  which = w;
  return true;
}

}  // namespace

LoraConfig load_peft_adapter(CausalLM& model, const std::string& name, const std::string& dir,
                             const PeftLoadOptions& options) {
  check_adapter_name(name);
  const std::string config_path = dir + "/adapter_config.json";
  const std::string weights_path = dir + "/adapter_model.safetensors";
  if (!fs::is_directory(dir)) fail(dir + ": not a folder (expected a PEFT adapter folder)");
  if (!fs::exists(config_path)) fail(dir + ": no adapter_config.json here; not a PEFT adapter folder");
  if (!fs::exists(weights_path)) {
    if (fs::exists(dir + "/adapter_model.bin"))
      fail(dir + ": adapter_model.bin (pickle) is not supported; re-save the adapter with safe_serialization=True");
    fail(dir + ": no adapter_model.safetensors here");
  }
  LoraConfig config = parse_adapter_config(config_path, options.allow_modules_to_save);
  const auto existing = adapter_names(model);
  if (std::find(existing.begin(), existing.end(), name) != existing.end())
    fail("LoRA adapter '" + name + "' already exists; remove it first or choose another name");
  const int64_t n_layers = model->config().num_hidden_layers;
  for (int64_t l : config.layers_to_transform)
    if (l < 0 || l >= n_layers)
      fail(config_path + ": key 'layers_to_transform' has layer " + std::to_string(l) + " but the model has " +
           std::to_string(n_layers) + " layers");

  SafetensorsFile file(weights_path);
  std::map<std::string, TargetModule> by_path;
  for (auto& t : all_targets(model)) by_path.emplace(t.path, t);

  // module path -> tensor key of A and of B
  std::map<std::string, std::pair<std::string, std::string>> found;
  std::vector<std::string> unknown;
  std::map<std::string, std::string> module_tensors;  // modules_to_save name -> tensor key
  for (const auto& key : file.names()) {
    const std::string bare = key.rfind(kPeftPrefix, 0) == 0 ? key.substr(std::string(kPeftPrefix).size()) : key;
    const auto& saved = config.modules_to_save;
    bool whole_module = false;
    for (const auto& m : saved)
      if (bare == module_to_save_path(m) + ".weight") module_tensors[m] = key, whole_module = true;
    if (whole_module) continue;
    std::string module;
    char which = 0;
    if (!parse_lora_key(key, module, which))
      fail(weights_path + ": tensor '" + key + "' is not a lora_A/lora_B weight (embeddings, lm_head and " +
           "modules_to_save are not LoRA); vLLM cannot load such an adapter");
    auto it = by_path.find(module);
    if (it == by_path.end()) {
      unknown.push_back(key);
      continue;
    }
    const auto& tm = config.target_modules;
    if (std::find(tm.begin(), tm.end(), it->second.short_name) == tm.end())
      fail(weights_path + ": tensor '" + key + "' is on " + it->second.short_name + ", which " + config_path +
           " key 'target_modules' does not list");
    const auto& lt = config.layers_to_transform;
    if (!lt.empty() && std::find(lt.begin(), lt.end(), it->second.layer) == lt.end())
      fail(weights_path + ": tensor '" + key + "' is on layer " + std::to_string(it->second.layer) + ", which " +
           config_path + " key 'layers_to_transform' excludes");
    std::string& slot = which == 'A' ? found[module].first : found[module].second;
    if (!slot.empty()) fail(weights_path + ": tensors '" + slot + "' and '" + key + "' both hold " + module + ".lora_" + which);
    slot = key;
  }
  if (!unknown.empty())
    fail(weights_path + ": tensors name modules this model lacks: " + join(unknown) +
         " (an adapter for another base model?)");
  if (found.empty()) fail(weights_path + ": no lora_A/lora_B tensors; the adapter matches zero modules");
  for (const auto& m : config.modules_to_save) {
    if (!module_tensors.count(m))
      fail(weights_path + ": " + config_path + " lists '" + m + "' in modules_to_save but no tensor '" + kPeftPrefix +
           module_to_save_path(m) + ".weight' holds it");
    const auto expected = module_to_save_weight(model, m, config_path).sizes().vec();
    const auto& shape = file.entry(module_tensors[m]).shape;
    if (shape != expected)
      fail(weights_path + ": tensor '" + module_tensors[m] + "' has shape " + shape_text(shape) + ", model expects " +
           shape_text(expected));
  }

  // Shapes, in key order so the first offending tensor is the one reported.
  std::vector<std::string> keys;
  for (const auto& [module, ab] : found) {
    const std::string stem = std::string(kPeftPrefix) + module + ".lora_";
    if (ab.first.empty()) fail(weights_path + ": tensor '" + stem + "A.weight' is missing (its lora_B is present)");
    if (ab.second.empty()) fail(weights_path + ": tensor '" + stem + "B.weight' is missing (its lora_A is present)");
    keys.push_back(ab.first);
    keys.push_back(ab.second);
  }
  std::sort(keys.begin(), keys.end());
  for (const auto& key : keys) {
    std::string module;
    char which = 0;
    parse_lora_key(key, module, which);
    const auto& lin = by_path.at(module).linear;
    const std::vector<int64_t> expected =
        which == 'A' ? std::vector<int64_t>{config.r, lin->in_features()} : std::vector<int64_t>{lin->out_features(), config.r};
    const auto& shape = file.entry(key).shape;
    if (shape != expected)
      fail(weights_path + ": tensor '" + key + "' has shape " + shape_text(shape) + ", model expects " +
           shape_text(expected));
  }

  freeze_base(model);
  for (const auto& [module, ab] : found) {
    auto& lin = by_path.at(module).linear;
    const auto dtype = adapter_dtype(lin->weight);
    auto A = file.load(ab.first).to(lin->weight.device(), dtype);
    auto B = file.load(ab.second).to(lin->weight.device(), dtype);
    lin->add_adapter(name, A, B, config.scale(), config.dropout);
  }
  for (const auto& [m, key] : module_tensors) {
    torch::NoGradGuard no_grad;
    auto weight = module_to_save_weight(model, m, config_path);
    weight.copy_(file.load(key).to(weight.device(), weight.scalar_type()));
  }
  append_active(model, name);
  return config;
}

}  // namespace lathe
