// The pipeline config: see pipeline_config.h.
#include "pipeline/pipeline_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include "core/error.h"
#include "rl/grpo.h"
#include "train/sft.h"

namespace lathe::pipeline {

namespace {

// Keys of a recipe the pipeline fills in itself, so they are not pipeline keys.
bool is_set_by_pipeline(const std::string& key, const std::set<std::string>& exact,
                        const std::vector<std::string>& prefixes) {
  if (exact.count(key)) return true;
  for (const auto& p : prefixes)
    if (key.rfind(p, 0) == 0) return true;
  return false;
}

const std::set<std::string> kRunKeys = {"run.name", "run.dir", "run.seed", "training.device", "training.threads",
                                        "model.chat_template"};

struct RecipeKeys {
  const ConfigSchema& (*schema)();
  std::set<std::string> exact;
  std::vector<std::string> prefixes;
  std::function<std::string(const std::string&)> name;  // recipe key -> pipeline key
  std::map<std::string, ConfigValue> defaults;          // recipe key -> the pipeline's default
  std::map<std::string, std::string> docs;              // recipe key -> the pipeline's wording
};

const RecipeKeys& pretrain_keys() {
  static const RecipeKeys keys = [] {
    RecipeKeys k{&sft_config_schema, kRunKeys, {"lora.", "tokenizer."},
                 [](const std::string& key) { return "pretrain." + key; }, {}, {}};
    k.exact.insert({"model.init", "model.path", "model.dtype", "data.train", "data.validation"});
    k.defaults = {{"model.hidden_size", int64_t{256}}, {"model.intermediate_size", int64_t{688}},
                  {"model.num_layers", int64_t{4}},     {"model.num_heads", int64_t{8}},
                  {"model.num_kv_heads", int64_t{4}},   {"data.train_on_prompt", true},
                  {"data.max_seq_len", int64_t{512}},   {"training.batch_size", int64_t{8}},
                  {"training.max_steps", int64_t{400}}, {"training.lr", 2e-3},
                  {"training.warmup_steps", int64_t{20}}, {"training.min_lr_ratio", 0.1},
                  {"eval.every", int64_t{100}},         {"log.every", int64_t{5}}};
    return k;
  }();
  return keys;
}

const RecipeKeys& sft_keys() {
  static const RecipeKeys keys = [] {
    RecipeKeys k{&sft_config_schema, kRunKeys, {"tokenizer."}, [](const std::string& key) { return "sft." + key; }, {}, {}};
    k.exact.insert({"model.init", "model.path", "model.preset", "model.hidden_size", "model.intermediate_size",
                    "model.num_layers", "model.num_heads", "model.num_kv_heads", "model.tie_word_embeddings",
                    "data.train", "data.validation"});
    k.defaults = {{"lora.enabled", true},
                  {"lora.r", int64_t{16}},
                  {"lora.alpha", 32.0},
                  {"lora.target_modules", std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                                   "up_proj", "down_proj"}},
                  {"data.max_seq_len", int64_t{640}},
                  {"training.batch_size", int64_t{8}},
                  {"training.max_steps", int64_t{200}},
                  {"training.lr", 2e-3},
                  {"training.warmup_steps", int64_t{10}},
                  {"eval.every", int64_t{50}},
                  {"log.every", int64_t{5}}};
    k.docs = {{"lora.enabled",
               "true: a LoRA adapter on the base (sft/adapter; GRPO continues it). false: full fine-tuning "
               "(sft/model; GRPO trains a new adapter over it, grpo.lora.*)."}};
    return k;
  }();
  return keys;
}

const RecipeKeys& grpo_keys() {
  static const RecipeKeys keys = [] {
    RecipeKeys k{&grpo_config_schema, kRunKeys, {},
                 [](const std::string& key) { return key.rfind("grpo.", 0) == 0 ? key : "grpo." + key; }, {}, {}};
    k.exact.insert({"model.path", "adapter.init", "adapter.path", "data.train", "rewards.sql_execution.database"});
    k.defaults = {{"grpo.num_generations", int64_t{4}},
                  {"grpo.max_completion_length", int64_t{128}},
                  {"grpo.temperature", 0.8},
                  {"grpo.beta", 0.02},
                  {"rewards.use", std::vector<std::string>{"sql_execution", "xml_strict", "xml_count"}},
                  {"training.batch_size", int64_t{8}},
                  {"training.max_steps", int64_t{20}},
                  {"training.lr", 5e-4},
                  {"log.rollouts_every", int64_t{1}},
                  {"lora.r", int64_t{16}},
                  {"lora.alpha", 32.0},
                  {"lora.target_modules", std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                                   "up_proj", "down_proj"}}};
    // GRPO continues the SFT adapter; after full fine-tuning there is none, so it starts one.
    const std::string when = " Only when sft.lora.enabled is false: GRPO then trains a new adapter over sft/model.";
    k.docs = {{"lora.r", "LoRA rank of GRPO's adapter." + when},
              {"lora.alpha", "LoRA alpha of GRPO's adapter." + when},
              {"lora.dropout", "Dropout on the LoRA input of GRPO's adapter." + when},
              {"lora.target_modules", "Linears that get GRPO's adapter." + when},
              {"lora.use_rslora", "Rank-stabilised scale alpha / sqrt(r) for GRPO's adapter." + when}};
    return k;
  }();
  return keys;
}

void add_key(ConfigSchema& schema, const std::string& name, const ConfigKey& k, const ConfigValue& def,
             const std::string& doc) {
  switch (k.type) {
    case ConfigType::Int: schema.add_int(name, std::get<int64_t>(def), doc, k.min, k.max); break;
    case ConfigType::Float: schema.add_float(name, std::get<double>(def), doc, k.min, k.max); break;
    case ConfigType::Bool: schema.add_bool(name, std::get<bool>(def), doc); break;
    case ConfigType::String: schema.add_string(name, std::get<std::string>(def), doc, k.choices); break;
    case ConfigType::StringList:
      schema.add_string_list(name, std::get<std::vector<std::string>>(def), doc, k.choices);
      break;
    case ConfigType::IntList: schema.add_int_list(name, std::get<std::vector<int64_t>>(def), doc, k.min, k.max); break;
  }
}

void import_recipe_keys(ConfigSchema& schema, const RecipeKeys& recipe) {
  for (const ConfigKey& k : recipe.schema().keys()) {
    if (is_set_by_pipeline(k.key, recipe.exact, recipe.prefixes)) continue;
    auto def = recipe.defaults.find(k.key);
    auto doc = recipe.docs.find(k.key);
    add_key(schema, recipe.name(k.key), k, def == recipe.defaults.end() ? k.default_value : def->second,
            doc == recipe.docs.end() ? k.doc : doc->second);
  }
}

ConfigValue value_of(const Config& config, const ConfigKey& k) {
  switch (k.type) {
    case ConfigType::Int: return config.get_int(k.key);
    case ConfigType::Float: return config.get_float(k.key);
    case ConfigType::Bool: return config.get_bool(k.key);
    case ConfigType::String: return config.get_string(k.key);
    case ConfigType::StringList: return config.get_string_list(k.key);
    case ConfigType::IntList: return config.get_int_list(k.key);
  }
  return {};
}

std::string float_text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void emit_value(YAML::Emitter& out, const ConfigValue& v) {
  struct Visitor {
    YAML::Emitter& out;
    void operator()(int64_t x) const { out << x; }
    void operator()(double x) const { out << float_text(x); }
    void operator()(bool x) const { out << x; }
    void operator()(const std::string& x) const { out << YAML::DoubleQuoted << x; }
    void operator()(const std::vector<std::string>& x) const {
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& s : x) out << YAML::DoubleQuoted << s;
      out << YAML::EndSeq;
    }
    void operator()(const std::vector<int64_t>& x) const {
      out << YAML::Flow << YAML::BeginSeq;
      for (auto i : x) out << i;
      out << YAML::EndSeq;
    }
  };
  std::visit(Visitor{out}, v);
}

std::string value_text(const ConfigValue& v) {
  YAML::Emitter out;
  emit_value(out, v);
  return out.c_str();
}

// The recipe's config: its keys from the pipeline's (renamed), the pipeline-set ones from `set`.
Config recipe_config(const Config& config, const RecipeKeys& recipe, const std::map<std::string, ConfigValue>& set,
                     const std::string& stage) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const ConfigKey& k : recipe.schema().keys()) {
    auto given = set.find(k.key);
    if (given != set.end()) {
      out << YAML::Key << k.key << YAML::Value;
      emit_value(out, given->second);
    } else if (!is_set_by_pipeline(k.key, recipe.exact, recipe.prefixes)) {
      out << YAML::Key << k.key << YAML::Value;
      emit_value(out, value_of(config, *config.schema().find(recipe.name(k.key))));
    }
  }
  out << YAML::EndMap;
  return resolve_config(recipe.schema(), out.c_str(), "pipeline stage " + stage, {});
}

std::map<std::string, ConfigValue> common_recipe_values(const Config& config, const std::string& run_dir) {
  return {{"run.name", std::string("pipeline")},
          {"run.dir", run_dir},
          {"run.seed", config.get_int("run.seed")},
          {"training.device", config.get_string("run.device")},
          {"training.threads", config.get_int("run.threads")},
          {"model.chat_template", config.get_string("base.chat_template")}};
}

}  // namespace

const std::vector<std::string>& stage_names() {
  static const std::vector<std::string> names = {"data", "corpus", "tokenizer", "pretrain", "sft", "grpo", "eval", "serve", "report"};
  return names;
}

const ConfigSchema& pipeline_config_schema() {
  static const ConfigSchema schema = [] {
    ConfigSchema s;
    s.add_string_list("run.stages", stage_names(),
                      "Stages to run, in this order (a stage's inputs must be listed too; without pretrain, set base.path).",
                      stage_names())
        .add_int("run.seed", 42, "Seed of every stage (data order, initialisation, LoRA, sampling).", 0)
        .add_string("run.device", "cpu", "cpu, cuda or cuda:N, for every model stage.")
        .add_int("run.threads", 0, "CPU threads (0 = all cores).", 0)
        .add_string("base.path", "",
                    "Hugging Face model folder to fine-tune instead of pretraining one (run.stages without corpus, "
                    "tokenizer, pretrain).")
        .add_string("base.chat_template", "auto", "Chat format of the base (auto = the model's own, plain for a pretrained one).",
                    {"auto", "plain", "chatml", "llama3", "llama2", "mistral"})
        .add_string("data.dir", "",
                    "An existing `lathe data build` folder to use instead of building one (the data.db/collect/label/"
                    "split keys are then ignored).")
        .add_int("data.db.vehicles", 2000, "Synthetic vehicles in the inventory database.", 1)
        .add_int("data.db.seed", 1, "Inventory generator seed.", 0)
        .add_string("data.db.as_of_date", "", "meta.as_of_date, YYYY-MM-DD (empty = the data recipe's default).")
        .add_string("data.db.from_csv", "", "Import this inventory CSV instead of generating one.")
        .add_int("data.collect.per_family", 30, "Questions per template family (alternating zh/en).", 1)
        .add_int("data.collect.seed", 1, "Slot-filling seed.", 0)
        .add_string_list("data.collect.import", {}, "User question files (.jsonl or .csv) added to the templates.")
        .add_int("data.label.max_result_rows", 200, "Drop examples whose gold result has more rows.", 1)
        .add_float("data.label.timeout_seconds", 2.0, "Time limit per gold query.", 0.001)
        .add_int("data.split.seed", 1, "Split seed.", 0)
        .add_float("data.split.val_fraction", 0.1, "Share of each family's question groups in val.", 0.0, 0.99)
        .add_float("data.split.test_fraction", 0.1, "Share of each family's question groups in test (held out).", 0.0, 0.99)
        .add_string_list("data.split.holdout_families", {"topn_oldest_in_stock_city", "neg_region_not_ev_in_stock"},
                         "Families placed wholly in test: never trained on (reported as unseen families).")
        .add_int("corpus.examples", 3000, "Pretraining questions over the other schemas (split evenly).", 1)
        .add_int("corpus.validation_examples", 100, "Of those, held out for the pretraining eval loss.", 0)
        .add_int("corpus.seed", 1, "Corpus generator seed.", 0)
        .add_string_list("corpus.schemas", {}, "Schemas of the corpus (empty = all).", data::corpus_schema_names())
        .add_int("corpus.entities_per_schema", 400, "Rows of each schema's main table.", 10)
        .add_bool("corpus.glossary", true,
                  "Add the car market's Chinese/English words (brands, models, colours, places) as short rows, "
                  "the world knowledge a real base would bring.")
        .add_int("tokenizer.vocab_size", 3000, "SentencePiece vocabulary size (256 byte pieces included).", 300, 1000000)
        .add_string("tokenizer.model_type", "bpe", "SentencePiece algorithm.", {"unigram", "bpe"})
        .add_bool("tokenizer.split_by_whitespace", false,
                  "Pieces end at spaces (true), or may span words: shorter sequences on the repetitive schema text.")
        .add_int("tokenizer.max_piece_length", 32, "Characters per piece at most.", 1, 512)
        .add_float("tokenizer.character_coverage", 0.9995, "Share of characters with their own piece (the rest: bytes).",
                   0.5, 1.0)
        .add_string_list("tokenizer.user_symbols",
                         {"<|system|>", "<|user|>", "<|assistant|>", "<reasoning>", "</reasoning>", "<answer>", "</answer>"},
                         "Strings that are always one piece (the plain chat template's markers, the answer tags).")
        .add_int("tokenizer.value_symbols", 128,
                 "Columns of the databases with at most this many distinct text values (brands, cities, colours): "
                 "their non-ASCII values become one piece each, so a name is the same token in the question and in "
                 "the query (0 = off).",
                 0)
        .add_bool("tokenizer.include_task_data", true,
                  "Also train the tokenizer on the inventory SFT train split (its Chinese names get pieces).")
        .add_int("tokenizer.max_sentences", 0, "Corpus lines sampled for tokenizer training (0 = all).", 0);
    import_recipe_keys(s, pretrain_keys());
    import_recipe_keys(s, sft_keys());
    import_recipe_keys(s, grpo_keys());
    s.add_string("eval.split", "test", "Labelled split the eval stage answers (test holds the unseen families).",
                 {"test", "val"})
        .add_string_list("eval.models", {"base", "sft", "grpo"}, "Models evaluated (each needs its stage).",
                         {"base", "sft", "grpo"})
        .add_int("eval.max_questions", 0, "Questions evaluated (0 = the whole split; else N evenly spaced through it).", 0)
        .add_int("eval.max_new_tokens", 160, "Tokens generated per answer at most.", 1)
        .add_int("eval.batch_size", 8, "Questions per generation batch.", 1)
        .add_string("serve.model", "grpo", "Model the serve stage's agent asks through `lathe serve` (its stage must run).",
                    {"base", "sft", "grpo"})
        .add_string_list("serve.questions",
                         {"宝马在上海有几辆在库？", "How many vehicles are in stock in Beijing?",
                          "在库车辆的平均指导价格是多少？", "Which store has the most reserved vehicles?"},
                         "Sample questions the serve stage's agent answers from the database.")
        .add_int("serve.max_attempts", 2, "Model calls per question (retries after an SQL error).", 1)
        .add_int("serve.max_tokens", 160, "Tokens per model reply at most.", 1)
        .add_int("report.rollouts", 6, "GRPO completions shown in the report (from the last logged step).", 0)
        .add_int("report.predictions", 8, "Eval answers shown per model in the report.", 0);
    return s;
  }();
  return schema;
}

data::DataBuildConfig data_build_config(const Config& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  const auto section = [&](const std::string& name, const std::vector<std::string>& keys) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    for (const auto& key : keys) {
      const std::string full = "data." + name + "." + key;
      const ConfigValue v = value_of(c, *c.schema().find(full));
      if (std::holds_alternative<std::string>(v) && std::get<std::string>(v).empty()) continue;  // recipe default
      out << YAML::Key << key << YAML::Value;
      emit_value(out, v);
    }
    out << YAML::EndMap;
  };
  section("db", {"vehicles", "seed", "as_of_date", "from_csv"});
  section("collect", {"per_family", "seed", "import"});
  section("label", {"max_result_rows", "timeout_seconds"});
  section("split", {"seed", "val_fraction", "test_fraction", "holdout_families"});
  out << YAML::EndMap;
  return data::parse_data_build_config(out.c_str(), "pipeline config (data.*)");
}

data::CorpusOptions corpus_options(const Config& c) {
  data::CorpusOptions o;
  o.examples = c.get_int("corpus.examples") + c.get_int("corpus.validation_examples");
  o.seed = static_cast<uint64_t>(c.get_int("corpus.seed"));
  o.schemas = c.get_string_list("corpus.schemas");
  o.entities_per_schema = static_cast<int>(c.get_int("corpus.entities_per_schema"));
  return o;
}

SentencePieceTrainOptions tokenizer_options(const Config& c) {
  SentencePieceTrainOptions o;
  o.vocab_size = static_cast<int>(c.get_int("tokenizer.vocab_size"));
  o.model_type = c.get_string("tokenizer.model_type");
  o.character_coverage = c.get_float("tokenizer.character_coverage");
  o.user_defined_symbols = c.get_string_list("tokenizer.user_symbols");
  o.split_by_whitespace = c.get_bool("tokenizer.split_by_whitespace");
  o.max_piece_length = static_cast<int>(c.get_int("tokenizer.max_piece_length"));
  o.max_sentences = c.get_int("tokenizer.max_sentences");
  return o;
}

Config pretrain_recipe_config(const Config& config, const std::string& run_dir, const std::string& train_file,
                              const std::string& validation_file, const std::string& tokenizer_dir) {
  auto set = common_recipe_values(config, run_dir);
  set["model.init"] = std::string("random");
  set["tokenizer.path"] = tokenizer_dir;
  set["data.train"] = train_file;
  set["data.validation"] = validation_file;
  return recipe_config(config, pretrain_keys(), set, "pretrain");
}

Config sft_recipe_config(const Config& config, const std::string& run_dir, const std::string& base_dir,
                         const std::string& train_file, const std::string& validation_file) {
  auto set = common_recipe_values(config, run_dir);
  set["model.init"] = std::string("load");
  set["model.path"] = base_dir;
  set["data.train"] = train_file;
  set["data.validation"] = validation_file;
  return recipe_config(config, sft_keys(), set, "sft");
}

Config grpo_recipe_config(const Config& config, const std::string& run_dir, const std::string& model_dir,
                          const std::string& adapter_dir, const std::string& train_file, const std::string& database) {
  auto set = common_recipe_values(config, run_dir);
  set["model.path"] = model_dir;
  set["adapter.init"] = std::string(adapter_dir.empty() ? "new" : "load");
  set["adapter.path"] = adapter_dir;
  set["data.train"] = train_file;
  set["rewards.sql_execution.database"] = database;
  return recipe_config(config, grpo_keys(), set, "grpo");
}

std::string config_section_text(const Config& config, const std::vector<std::string>& prefixes) {
  std::string out;
  for (const ConfigKey& k : config.schema().keys())
    for (const auto& p : prefixes)
      if (k.key.rfind(p, 0) == 0) {
        out += k.key + ": " + value_text(value_of(config, k)) + "\n";
        break;
      }
  return out;
}

}  // namespace lathe::pipeline
