// The pipeline recipe: checks → data → corpus → tokenizer → pretrain → sft → grpo → eval →
// serve (the agent answers sample questions through `lathe serve` with the adapters) →
// report, each stage in RUN/<stage>/ with its key (pipeline/stage.h). Stages hand each other
// paths only: the data folder, the base model folder (RUN/pretrain/model or base.path), the
// adapters (RUN/sft/adapter, RUN/grpo/adapter), or after full fine-tuning the SFT model
// (RUN/sft/model) with GRPO's new adapter over it.
#include "pipeline/pipeline.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "agent/agent.h"
#include "agent/sqlite_executor.h"
#include "agent/trace.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/openai_client.h"
#include "core/runtime.h"
#include "data/example.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "data/pipeline.h"
#include "data/sql_corpus.h"
#include "data/sql_exec.h"
#include "model/lora.h"
#include "model/model_io.h"
#include "model/sentencepiece_trainer.h"
#include "pipeline/evaluate.h"
#include "pipeline/json_files.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/report.h"
#include "pipeline/stage.h"
#include "rl/grpo.h"
#include "serve/server.h"
#include "train/checkpoint.h"
#include "train/sft.h"
#include "train/sft_data.h"

namespace lathe::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A model the eval and serve stages load: a model folder, with a PEFT adapter or none.
struct ModelUnderTest {
  std::string folder;
  std::string adapter;  // empty: the folder alone
};

// A training stage stopped by a signal: the pipeline stops after its checkpoint.
struct Interrupted {
  int signal;
};

bool listed(const Config& c, const std::string& stage) {
  const auto& stages = c.get_string_list("run.stages");
  return std::find(stages.begin(), stages.end(), stage) != stages.end();
}

int64_t count_rows(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path + ": cannot read");
  int64_t n = 0;
  std::string line;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) ++n;
  return n;
}

// The files a dataset folder must hold for the stages after it, each with at least one row.
void check_dataset(const std::string& dir, const std::string& eval_split, const std::string& what) {
  if (!fs::is_directory(dir)) fail(what + ": " + dir + " is not a folder (build one with `lathe data build`)");
  if (!fs::exists(dir + "/inventory.sqlite")) fail(what + ": " + dir + "/inventory.sqlite is missing");
  for (const std::string& name : std::vector<std::string>{"sft_train.jsonl", "sft_val.jsonl", "grpo_train.jsonl", eval_split + ".jsonl"}) {
    const std::string path = dir + "/" + name;
    if (!fs::exists(path)) fail(what + ": " + path + " is missing");
    if (name != "sft_val.jsonl" && count_rows(path) == 0) fail(what + ": dataset " + path + " has no rows");
  }
}

// Identity of a model folder the pipeline did not make: its config and weight file sizes.
std::string model_fingerprint(const std::string& dir) {
  std::string text = read_file(dir + "/config.json");
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".safetensors" || entry.path().filename() == "tokenizer.model" ||
        entry.path().filename() == "tokenizer.json")
      text += "\n" + entry.path().filename().string() + " " + std::to_string(entry.file_size());
  return text;
}

std::string dataset_fingerprint(const std::string& dir) {
  std::string text = "dir: " + dir + "\n";
  if (fs::exists(dir + "/manifest.json")) text += read_file(dir + "/manifest.json");
  for (const char* name : {"inventory.sqlite", "sft_train.jsonl", "grpo_train.jsonl", "test.jsonl", "val.jsonl"})
    if (fs::exists(dir + "/" + name)) text += std::string("\n") + name + " " + std::to_string(fs::file_size(dir + "/" + name));
  return text;
}

// Whole-piece symbols for the tokenizer: the categorical names of the corpus databases and
// the inventory's (empty data_dir: none). One token per name, in the question and in the SQL
// alike, makes writing a filter value copying one token; BPE pieces instead fuse a name with
// its neighbours ("长安在库"), so the question and the SQL spell it differently.
std::vector<std::string> database_value_symbols(const std::string& corpus_dir, const std::string& data_dir,
                                                int64_t max_distinct) {
  if (max_distinct <= 0) return {};
  std::vector<std::string> databases;
  if (fs::is_directory(corpus_dir + "/db"))
    for (const auto& entry : fs::directory_iterator(corpus_dir + "/db"))
      if (entry.path().extension() == ".sqlite") databases.push_back(entry.path().string());
  if (!data_dir.empty()) databases.push_back(data_dir + "/inventory.sqlite");
  std::sort(databases.begin(), databases.end());
  std::vector<std::string> symbols;
  for (const auto& path : databases)
    for (const auto& value : data::SqlDatabase(path).categorical_text_values(static_cast<int>(max_distinct)))
      // SentencePiece's flag is comma-separated, and a piece never holds a space.
      if (value.find_first_of(", \t\n") == std::string::npos) symbols.push_back(value);
  std::sort(symbols.begin(), symbols.end());
  symbols.erase(std::unique(symbols.begin(), symbols.end()), symbols.end());
  return symbols;
}

double first_or(const std::vector<double>& v, double fallback) { return v.empty() ? fallback : v.front(); }
double last_or(const std::vector<double>& v, double fallback) { return v.empty() ? fallback : v.back(); }

json sft_summary(const SftResult& r) {
  return {{"steps", r.steps},
          {"first_loss", first_or(r.losses, -1)},
          {"last_loss", last_or(r.losses, -1)},
          {"eval_loss", r.eval_loss},
          {"eval_token_accuracy", r.eval_accuracy}};
}

// Runs SFT (pretraining or LoRA), resuming from the stage's checkpoint when asked.
json run_sft_stage(const Config& recipe, const StageContext& context, bool quiet) {
  SftRunOptions options;
  options.run_dir = context.dir;
  options.quiet = quiet;
  options.resume = context.resume && latest_checkpoint(context.dir).has_value();
  if (!options.resume) {
    std::error_code ec;
    fs::remove_all(context.dir + "/checkpoints", ec);
  }
  const SftResult r = run_sft(recipe, options);
  if (r.interrupted) throw Interrupted{r.signal};
  return sft_summary(r);
}

std::vector<data::Example> eval_examples(const Config& c, const std::string& data_dir) {
  std::vector<data::Example> examples = data::read_examples_jsonl(data_dir + "/" + c.get_string("eval.split") + ".jsonl");
  const int64_t max = c.get_int("eval.max_questions");
  if (max <= 0 || static_cast<int64_t>(examples.size()) <= max) return examples;
  // Evenly spaced through the split (it is grouped by family), so every family keeps its share.
  std::vector<data::Example> subset;
  for (int64_t i = 0; i < max; ++i) subset.push_back(examples[static_cast<size_t>(i * static_cast<int64_t>(examples.size()) / max)]);
  return subset;
}

}  // namespace

void check_pipeline_inputs(const Config& c, const std::string& run_dir) {
  const auto need = [&](const std::string& stage, const std::string& input) {
    if (listed(c, stage) && !listed(c, input))
      fail("run.stages: stage " + stage + " needs stage " + input + " (add it to run.stages)");
  };
  need("tokenizer", "corpus");
  need("pretrain", "tokenizer");
  need("sft", "data");
  need("grpo", "sft");
  need("eval", "data");
  need("serve", "data");
  if (listed(c, "serve") && c.get_string("serve.model") != "base") need("serve", c.get_string("serve.model"));
  const std::string base_path = c.get_string("base.path");
  if (listed(c, "pretrain") && !base_path.empty())
    fail("base.path is set but run.stages includes pretrain: use one base (drop pretrain, or clear base.path)");
  const bool needs_base = listed(c, "sft") || listed(c, "eval") || listed(c, "serve");
  if (needs_base && !listed(c, "pretrain") && base_path.empty())
    fail("base.path is empty and run.stages has no pretrain: set base.path to a Hugging Face model folder");
  if (!base_path.empty() && needs_base) {
    if (!fs::is_directory(base_path)) fail("base.path: model folder " + base_path + " does not exist");
    if (!fs::exists(base_path + "/config.json"))
      fail("base.path: " + base_path + " is not a model folder (no config.json)");
  }
  if (listed(c, "eval")) {
    if (c.get_string_list("eval.models").empty()) fail("eval.models is empty: name base, sft and/or grpo");
    for (const auto& m : c.get_string_list("eval.models"))
      if (m != "base" && !listed(c, m)) fail("eval.models names " + m + " but run.stages has no " + m + " stage");
  }
  if (!c.get_string("data.dir").empty()) {
    if (listed(c, "data")) check_dataset(c.get_string("data.dir"), c.get_string("eval.split"), "data.dir");
  } else if (listed(c, "data")) {
    const data::DataBuildConfig d = data_build_config(c);
    if (!d.db_from_csv.empty() && !fs::exists(d.db_from_csv)) fail("data.db.from_csv: " + d.db_from_csv + " does not exist");
    for (const auto& path : d.collect_imports) {
      if (!fs::exists(path)) fail("data.collect.import: " + path + " does not exist");
      if (count_rows(path) == 0) fail("data.collect.import: dataset " + path + " has no rows");
    }
  }
  // The run folder must take files before anything long starts.
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) fail("run folder " + run_dir + " cannot be created: " + ec.message());
  const std::string probe = run_dir + "/.write-test-" + std::to_string(::getpid());
  {
    std::ofstream out(probe);
    if (!(out << "ok")) fail("run folder " + run_dir + " is not writable");
  }
  fs::remove(probe, ec);
}

PipelineResult run_pipeline(const Config& c, const PipelineOptions& options) {
  // ---- checks and the run folder ------------------------------------------------------------
  PipelineResult result;
  result.run_dir = options.run_dir;
  if (result.run_dir.empty()) fail("pipeline: --run-dir DIR is required");
  const std::string run = result.run_dir;
  check_pipeline_inputs(c, run);
  write_file_atomic(run + "/pipeline.yaml", c.to_yaml());
  configure_threads(static_cast<int>(c.get_int("run.threads")));
  const std::string common = config_section_text(c, {"run.seed", "base."});
  std::map<std::string, std::string> keys;  // stage (or "base") -> key
  const auto record = [&](const std::string& stage, const std::string& config_text,
                          const std::vector<std::string>& inputs) {
    StageRecord r;
    r.stage = stage;
    r.config_text = config_text;
    std::vector<std::string> input_keys;
    for (const auto& i : inputs) {
      r.inputs[i] = keys.at(i);
      input_keys.push_back(keys.at(i));
    }
    r.key = stage_key(stage, config_text, input_keys);
    return r;
  };
  const auto finish = [&](const std::string& stage, const StageRun& done, double seconds) {
    keys[stage] = done.record.key;
    result.stages.push_back({stage, done.skipped, done.skipped ? 0.0 : seconds, done.record.summary});
  };

  try {
    // ---- data: the inventory database, labelled splits, SFT and GRPO rows ---------------------
    std::string data_dir = c.get_string("data.dir");
    if (listed(c, "data")) {
      const bool external = !data_dir.empty();
      const std::string dir = run + "/data";
      const std::string text = external ? dataset_fingerprint(data_dir) : config_section_text(c, {"data."});
      std::vector<std::string> outputs;
      if (!external)
        outputs = {"inventory.sqlite", "manifest.json", "sft_train.jsonl", "sft_val.jsonl", "grpo_train.jsonl",
                   "train.jsonl", "val.jsonl", "test.jsonl"};
      const StageRun done = run_stage(dir, record("data", text, {}), outputs, false, [&](const StageContext& ctx) {
        if (external) return json{{"dir", data_dir}, {"external", true}};
        json manifest = data::build_dataset(data_build_config(c), ctx.dir);
        manifest["dir"] = ctx.dir;
        return manifest;
      });
      finish("data", done, done.record.seconds);
      if (!external) data_dir = dir;
      check_dataset(data_dir, c.get_string("eval.split"), "data stage");
    }

    // ---- corpus: text-to-SQL over other schemas, for pretraining ------------------------------
    const std::string corpus_dir = run + "/corpus";
    if (listed(c, "corpus")) {
      const StageRun done = run_stage(
          corpus_dir, record("corpus", config_section_text(c, {"corpus."}), {}),
          {"corpus_train.jsonl", "corpus_val.jsonl"}, false, [&](const StageContext& ctx) {
            data::SqlCorpus corpus = data::generate_sql_corpus(corpus_options(c), ctx.dir + "/db");
            if (corpus.examples.size() < 2) fail("corpus: only " + std::to_string(corpus.examples.size()) + " examples; raise corpus.examples");
            const size_t val = std::min(corpus.examples.size() - 1, static_cast<size_t>(c.get_int("corpus.validation_examples")));
            data::SqlCorpus train = corpus, validation = corpus;
            train.examples.assign(corpus.examples.begin(), corpus.examples.end() - static_cast<std::ptrdiff_t>(val));
            validation.examples.assign(corpus.examples.end() - static_cast<std::ptrdiff_t>(val), corpus.examples.end());
            const std::vector<json> glossary = c.get_bool("corpus.glossary") ? data::glossary_rows() : std::vector<json>{};
            data::write_corpus_jsonl(ctx.dir + "/corpus_train.jsonl", train, glossary);
            data::write_corpus_jsonl(ctx.dir + "/corpus_val.jsonl", validation);
            json per_schema = json::object();
            for (const auto& e : corpus.examples) per_schema[e.schema] = per_schema.value(e.schema, 0) + 1;
            return json{{"train", train.examples.size()}, {"glossary", glossary.size()},
                        {"validation", validation.examples.size()},
                        {"per_schema", per_schema}, {"dropped", corpus.dropped}};
          });
      finish("corpus", done, done.record.seconds);
    }

    // ---- tokenizer: SentencePiece on the corpus (and the inventory train split) ---------------
    const std::string tokenizer_dir = run + "/tokenizer";
    if (listed(c, "tokenizer")) {
      const bool task_data = c.get_bool("tokenizer.include_task_data") && listed(c, "data");
      std::vector<std::string> inputs = {"corpus"};
      if (task_data) inputs.push_back("data");
      const StageRun done = run_stage(
          tokenizer_dir, record("tokenizer", config_section_text(c, {"tokenizer."}), inputs),
          {"tokenizer.model", "tokenizer_config.json"}, false, [&](const StageContext& ctx) {
            // The texts exactly as the model will see them (plain chat template, no end token).
            ChatTemplate plain;
            std::string text = sft_corpus_text(corpus_dir + "/corpus_train.jsonl", plain, "");
            if (task_data) text += sft_corpus_text(data_dir + "/sft_train.jsonl", plain, "");
            std::string lines;
            std::istringstream in(text);
            for (std::string line; std::getline(in, line);)
              if (!line.empty()) lines += line + "\n";
            write_file_atomic(ctx.dir + "/training_text.txt", lines);
            SentencePieceTrainOptions spm = tokenizer_options(c);
            spm.threads = std::max(1, available_cores());
            const std::vector<std::string> value_symbols =
                database_value_symbols(corpus_dir, task_data ? data_dir : "", c.get_int("tokenizer.value_symbols"));
            spm.user_defined_symbols.insert(spm.user_defined_symbols.end(), value_symbols.begin(), value_symbols.end());
            train_sentencepiece(ctx.dir + "/training_text.txt", ctx.dir, spm);
            fs::remove(ctx.dir + "/training_text.txt");
            const auto tokenizer = load_tokenizer(ctx.dir);
            return json{{"vocab_size", tokenizer->vocab_size()}, {"model_type", spm.model_type},
                        {"value_symbols", value_symbols.size()},
                        {"trained_on_task_data", task_data}};
          });
      finish("tokenizer", done, done.record.seconds);
    }

    // ---- pretrain: full-parameter training from random weights on the corpus ------------------
    std::string base_dir = c.get_string("base.path");
    if (listed(c, "pretrain")) {
      const std::string dir = run + "/pretrain";
      const Config recipe = pretrain_recipe_config(c, dir, corpus_dir + "/corpus_train.jsonl",
                                                   corpus_dir + "/corpus_val.jsonl", tokenizer_dir);
      const StageRun done =
          run_stage(dir, record("pretrain", config_section_text(c, {"pretrain."}) + common, {"corpus", "tokenizer"}),
                    {"model/config.json", "model/model.safetensors"}, true,
                    [&](const StageContext& ctx) { return run_sft_stage(recipe, ctx, options.quiet); });
      finish("pretrain", done, done.record.seconds);
      base_dir = dir + "/model";
      keys["base"] = done.record.key;
    } else if (!base_dir.empty()) {
      keys["base"] = stage_key("base", model_fingerprint(base_dir) + common, {});
    }

    // ---- sft: a LoRA adapter on the inventory train split, or full fine-tuning ---------------
    // What each later stage loads: the SFT model is the base plus sft/adapter, or sft/model;
    // GRPO's adapter continues sft/adapter, or is a new one over sft/model.
    const bool sft_full = !c.get_bool("sft.lora.enabled");
    const ModelUnderTest sft_model = sft_full ? ModelUnderTest{run + "/sft/model", ""}
                                              : ModelUnderTest{base_dir, run + "/sft/adapter"};
    const ModelUnderTest grpo_model{sft_model.folder, run + "/grpo/adapter"};
    if (listed(c, "sft")) {
      const std::string dir = run + "/sft";
      // A small dataset may leave val empty: then SFT runs without evaluation.
      const std::string validation = count_rows(data_dir + "/sft_val.jsonl") > 0 ? data_dir + "/sft_val.jsonl" : "";
      const Config recipe = sft_recipe_config(c, dir, base_dir, data_dir + "/sft_train.jsonl", validation);
      const std::vector<std::string> outputs =
          sft_full ? std::vector<std::string>{"model/config.json", "model/model.safetensors"}
                   : std::vector<std::string>{"adapter/adapter_config.json", "adapter/adapter_model.safetensors"};
      const StageRun done = run_stage(dir, record("sft", config_section_text(c, {"sft."}) + common, {"base", "data"}),
                                      outputs, true,
                                      [&](const StageContext& ctx) { return run_sft_stage(recipe, ctx, options.quiet); });
      finish("sft", done, done.record.seconds);
    }

    // ---- grpo: the SFT model improved with sql_execution + format rewards --------------------
    if (listed(c, "grpo")) {
      const std::string dir = run + "/grpo";
      const Config recipe = grpo_recipe_config(c, dir, sft_model.folder, sft_model.adapter,
                                               data_dir + "/grpo_train.jsonl", data_dir + "/inventory.sqlite");
      const StageRun done = run_stage(
          dir, record("grpo", config_section_text(c, {"grpo."}) + common, {"base", "data", "sft"}),
          {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"}, true, [&](const StageContext& ctx) {
            GrpoRunOptions o;
            o.run_dir = ctx.dir;
            o.quiet = options.quiet;
            o.resume = ctx.resume && latest_checkpoint(ctx.dir).has_value();
            const GrpoResult r = run_grpo(recipe, o);
            if (r.interrupted) throw Interrupted{r.signal};
            json s = {{"steps", r.steps}};
            if (!r.step_metrics.empty()) {
              s["first_reward"] = r.step_metrics.front().value("reward", 0.0);
              s["last_reward"] = r.step_metrics.back().value("reward", 0.0);
            }
            return s;
          });
      finish("grpo", done, done.record.seconds);
    }

    // ---- eval: execution accuracy of base, SFT and GRPO on the held-out split -----------------
    if (listed(c, "eval")) {
      const std::vector<std::string> models = c.get_string_list("eval.models");
      std::vector<std::string> inputs = {"base", "data"};
      for (const auto& m : models)
        if (m != "base") inputs.push_back(m);
      const StageRun done = run_stage(
          run + "/eval", record("eval", config_section_text(c, {"eval."}), inputs), {"results.json"}, false,
          [&](const StageContext& ctx) {
            const std::string template_name =
                c.get_string("base.chat_template") == "auto" ? "" : c.get_string("base.chat_template");
            const data::SqlDatabase db(data_dir + "/inventory.sqlite");
            const std::vector<data::Example> examples = eval_examples(c, data_dir);
            EvalOptions eval;
            eval.max_new_tokens = static_cast<int>(c.get_int("eval.max_new_tokens"));
            eval.batch_size = static_cast<int>(c.get_int("eval.batch_size"));
            eval.unseen_families = data_build_config(c).split.holdout_families;
            const std::string system_prompt = data::inventory_system_prompt(data::inventory_schema_sql());
            json results = {{"split", c.get_string("eval.split")}, {"questions", examples.size()},
                            {"models", json::object()}};
            // One model folder loaded at a time; its adapters switched on and off over it.
            std::optional<LoadedModel> loaded;
            std::string loaded_folder;
            for (const auto& m : models) {
              const ModelUnderTest under_test = m == "base" ? ModelUnderTest{base_dir, ""} : m == "sft" ? sft_model : grpo_model;
              if (!loaded || loaded_folder != under_test.folder) {
                loaded.reset();
                loaded.emplace(load_model(under_test.folder, parse_device(c.get_string("run.device")), torch::kFloat32,
                                          template_name));
                loaded_folder = under_test.folder;
              }
              if (under_test.adapter.empty()) {
                set_active_adapters(loaded->model, {});
              } else {
                load_peft_adapter(loaded->model, m, under_test.adapter);
                set_active_adapters(loaded->model, {m});
              }
              const EvalReport report = evaluate_execution_accuracy(loaded->model, *loaded->tokenizer, loaded->chat,
                                                                    system_prompt, db, examples, eval);
              write_jsonl_file(ctx.dir + "/predictions-" + m + ".jsonl", report.predictions);
              results["models"][m] = report.summary();
              log::info("eval " + m + ": execution accuracy " + std::to_string(report.overall.accuracy()) + " (" +
                        std::to_string(report.overall.correct) + "/" + std::to_string(report.overall.examples) + ")");
            }
            write_file_atomic(ctx.dir + "/results.json", results.dump(2) + "\n");
            return results;
          });
      finish("eval", done, done.record.seconds);
    }

    // ---- serve: `lathe serve` with the adapters, the SQL agent answering sample questions -----
    if (listed(c, "serve")) {
      const std::string model_name = c.get_string("serve.model");
      std::vector<std::string> inputs = {"base", "data"};
      if (model_name != "base") inputs.push_back(model_name);
      const StageRun done = run_stage(
          run + "/serve", record("serve", config_section_text(c, {"serve."}), inputs), {"answers.jsonl"}, false,
          [&](const StageContext& ctx) {
            serve::ServerOptions so;
            // One server, one base: the pretrained base with the LoRA adapters, or (after full
            // fine-tuning) the SFT model with GRPO's adapter.
            const bool serve_sft_model = sft_full && model_name != "base";
            so.model_dir = serve_sft_model ? sft_model.folder : base_dir;
            so.served_model_names = {serve_sft_model ? "sft" : "base"};
            so.port = 0;  // a free loopback port
            so.device = c.get_string("run.device");
            so.chat_template = c.get_string("base.chat_template") == "auto" ? "" : c.get_string("base.chat_template");
            so.enable_lora = true;
            so.scheduler.max_loras = 2;
            so.scheduler.max_lora_rank = 256;
            if (listed(c, "sft") && !sft_full) so.lora_modules.push_back({"sft", sft_model.adapter, ""});
            if (listed(c, "grpo") && (serve_sft_model || !sft_full)) so.lora_modules.push_back({"grpo", grpo_model.adapter, ""});
            serve::Server server(so);
            server.start();
            OpenAiClientOptions client_options;
            client_options.endpoint = server.url();
            const OpenAiClient client(client_options);
            agent::AgentConfig agent_config;
            agent_config.max_attempts = static_cast<int>(c.get_int("serve.max_attempts"));
            agent_config.max_tokens = static_cast<int>(c.get_int("serve.max_tokens"));
            // The prompt SFT and GRPO trained on (and eval asks with), not the agent's live one.
            agent_config.system_prompt = data::inventory_system_prompt(data::inventory_schema_sql());
            agent::SqliteExecutor executor(data_dir + "/inventory.sqlite", agent_config.limits);
            agent::Tracer tracer(ctx.dir + "/traces.jsonl");
            agent::Agent agent(client, model_name, executor, agent_config, tracer);
            std::vector<json> answers;
            int64_t answered = 0;
            for (const auto& question : c.get_string_list("serve.questions")) {
              const agent::AgentAnswer a = agent.ask(question);
              answered += a.ok;
              answers.push_back(agent::answer_to_json(a));
              log::info("serve: " + question + " → " + (a.ok ? a.answer : "(no answer: " + a.answer + ")"));
            }
            server.shutdown();
            write_jsonl_file(ctx.dir + "/answers.jsonl", answers);
            return json{{"model", model_name}, {"questions", answers.size()}, {"answered", answered},
                        {"endpoint", server.url()}};
          });
      finish("serve", done, done.record.seconds);
    }
  } catch (const Interrupted& i) {
    result.interrupted = true;
    result.signal = i.signal;
    log::info("pipeline: interrupted; rerun the same command to resume");
    return result;
  }

  // ---- report ---------------------------------------------------------------------------------
  if (listed(c, "report")) {
    ReportOptions report;
    report.rollouts = static_cast<int>(c.get_int("report.rollouts"));
    report.predictions = static_cast<int>(c.get_int("report.predictions"));
    result.report_path = write_report(run, report);
    result.stages.push_back({"report", false, 0.0, {{"path", result.report_path}}});
  }
  return result;
}

std::string format_pipeline_summary(const PipelineResult& result) {
  std::ostringstream out;
  out << "pipeline " << result.run_dir << (result.interrupted ? " (interrupted)" : "") << "\n";
  for (const auto& s : result.stages) {
    char line[160];
    if (s.skipped) std::snprintf(line, sizeof line, "  %-10s up to date, skipped\n", s.stage.c_str());
    else std::snprintf(line, sizeof line, "  %-10s %8.1f s\n", s.stage.c_str(), s.seconds);
    out << line;
    if (s.stage == "eval" && s.summary.contains("models")) {
      for (const std::string name : {"base", "sft", "grpo"}) {
        if (!s.summary["models"].contains(name)) continue;
        const json& m = s.summary["models"][name];
        std::snprintf(line, sizeof line, "    %-5s execution accuracy %5.1f%%  (%lld/%lld; unseen families %5.1f%%)\n",
                      name.c_str(), 100 * m["overall"]["accuracy"].get<double>(),
                      static_cast<long long>(m["overall"]["correct"].get<int64_t>()),
                      static_cast<long long>(m["overall"]["examples"].get<int64_t>()),
                      100 * m["unseen_families"]["accuracy"].get<double>());
        out << line;
      }
    }
  }
  if (!result.report_path.empty()) out << "report: " << result.report_path << "\n";
  return out.str();
}

}  // namespace lathe::pipeline
