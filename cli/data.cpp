// `lathe data …`: the inventory dataset stages as subcommands (db, collect, label, split,
// format, select, build, stats, eval). Flags only; the work is in data/.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "data/collect.h"
#include "data/evaluate.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "data/label.h"
#include "data/pipeline.h"
#include "data/select.h"
#include "data/split.h"

namespace lathe::cli {

namespace {

// Declared once for format, select, eval and stats: they must agree on the prompt.
void add_system_prompt_option(CLI::App& cmd, std::string& path) {
  cmd.add_option("--system-prompt", path,
                 "file whose text replaces the shared inventory system prompt (give the same file to format, "
                 "select and eval)");
}

}  // namespace

void register_data(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "build the inventory text-to-SQL datasets");
  data->require_subcommand(1);

  {
    struct Opts {
      data::InventoryDbOptions db;
      std::string out, from_csv, as_of;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = data->add_subcommand("db", "generate (or import from CSV) the inventory SQLite database");
    cmd->add_option("--vehicles", o->db.vehicles, "vehicles to generate")->capture_default_str();
    cmd->add_option("--seed", o->db.seed, "generator seed (same seed, same rows)")->capture_default_str();
    cmd->add_option("--as-of", o->as_of, "meta.as_of_date YYYY-MM-DD (default 2024-06-30; for CSV the latest pickup)");
    cmd->add_option("--from-csv", o->from_csv, "import this inventory export (header row) instead of generating");
    cmd->add_option("--out", o->out, "output .sqlite file")->required();
    cmd->callback([o] {
      if (!o->from_csv.empty()) {
        const auto r = data::import_inventory_csv(o->from_csv, o->out, o->as_of);
        std::printf("imported %d vehicles into %s, rejected %d rows\n", r.imported, o->out.c_str(), r.rejected);
      } else {
        if (!o->as_of.empty()) o->db.as_of_date = o->as_of;
        data::generate_inventory_db(o->out, o->db);
      }
    });
  }
  {
    struct Opts {
      std::string db, out;
      data::CollectOptions collect;
      std::vector<std::string> imports;
      bool no_templates = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = data->add_subcommand("collect", "write template (and imported) questions with gold SQL as JSONL");
    cmd->add_option("--db", o->db, "inventory database")->required();
    cmd->add_option("--out", o->out, "output examples .jsonl")->required();
    cmd->add_option("--per-family", o->collect.per_family, "questions per family")->capture_default_str();
    cmd->add_option("--seed", o->collect.seed, "slot-filling seed")->capture_default_str();
    cmd->add_option("--import", o->imports, "user question files (.jsonl/.csv)");
    cmd->add_flag("--no-templates", o->no_templates, "only the imported questions (e.g. an unlabeled pool)");
    cmd->callback([o] {
      std::vector<data::Example> examples;
      if (!o->no_templates) examples = data::collect_template_questions(data::SqlDatabase(o->db), o->collect);
      for (const auto& path : o->imports) {
        auto r = data::import_user_questions(path);
        examples.insert(examples.end(), r.examples.begin(), r.examples.end());
      }
      data::write_examples_jsonl(o->out, examples);
      std::printf("wrote %zu examples to %s\n", examples.size(), o->out.c_str());
    });
  }
  {
    struct Opts {
      std::string db, in, out;
      data::LabelOptions label;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = data->add_subcommand("label", "execute gold SQL, keep results, drop unusable examples");
    cmd->add_option("--db", o->db, "inventory database")->required();
    cmd->add_option("--in", o->in, "examples .jsonl")->required();
    cmd->add_option("--out", o->out, "labelled examples .jsonl")->required();
    cmd->add_option("--max-result-rows", o->label.max_result_rows, "drop larger gold results")->capture_default_str();
    cmd->add_option("--timeout", o->label.timeout_seconds, "seconds per gold query")->capture_default_str();
    cmd->callback([o] {
      const auto r = data::label_examples(data::SqlDatabase(o->db), data::read_examples_jsonl(o->in), o->label);
      data::write_examples_jsonl(o->out, r.kept);
      std::printf("kept %zu examples in %s\n", r.kept.size(), o->out.c_str());
    });
  }
  {
    struct Opts {
      std::string in, out;
      data::SplitOptions split;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = data->add_subcommand("split", "split labelled examples into DIR/{train,val,test}.jsonl");
    cmd->add_option("--in", o->in, "labelled examples .jsonl")->required();
    cmd->add_option("--out", o->out, "output folder")->required();
    cmd->add_option("--seed", o->split.seed, "split seed")->capture_default_str();
    cmd->add_option("--val-fraction", o->split.val_fraction, "val share per family")->capture_default_str();
    cmd->add_option("--test-fraction", o->split.test_fraction, "test share per family")->capture_default_str();
    cmd->add_option("--holdout", o->split.holdout_families, "families placed wholly in test");
    cmd->callback([o] {
      const auto s = data::split_examples(data::read_examples_jsonl(o->in), o->split);
      std::filesystem::create_directories(o->out);
      data::write_examples_jsonl(o->out + "/train.jsonl", s.train);
      data::write_examples_jsonl(o->out + "/val.jsonl", s.val);
      data::write_examples_jsonl(o->out + "/test.jsonl", s.test);
      std::printf("train %zu, val %zu, test %zu in %s\n", s.train.size(), s.val.size(), s.test.size(), o->out.c_str());
    });
  }
  {
    struct Opts {
      std::string in, sft, grpo, system_prompt;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = data->add_subcommand("format", "write SFT (messages) and/or GRPO (prompt + gold) JSONL");
    cmd->add_option("--in", o->in, "labelled examples .jsonl")->required();
    cmd->add_option("--sft", o->sft, "SFT output .jsonl");
    cmd->add_option("--grpo", o->grpo, "GRPO output .jsonl");
    add_system_prompt_option(*cmd, o->system_prompt);
    cmd->callback([o] {
      if (o->sft.empty() && o->grpo.empty()) fail("data format: give --sft and/or --grpo");
      const auto examples = data::read_examples_jsonl(o->in);
      const std::string prompt = data::dataset_system_prompt(o->system_prompt);
      if (!o->sft.empty()) data::write_sft_jsonl(o->sft, examples, prompt);
      if (!o->grpo.empty()) data::write_grpo_jsonl(o->grpo, examples, prompt);
      std::printf("formatted %zu examples\n", examples.size());
    });
  }
  {
    struct Opts {
      ModelOptions model;
      std::string adapter, db, pool, out, strategy = "random", system_prompt;
      std::vector<std::string> exclude;
      data::SelectOptions select;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = data->add_subcommand(
        "select", "active learning: pick the N pool questions most worth labelling next (random, entropy, disagreement)");
    add_model_options(*cmd, o->model, /*model_required=*/false);
    cmd->add_option("--adapter", o->adapter, "PEFT LoRA adapter folder applied to --model");
    cmd->add_option("--db", o->db, "inventory database the sampled SQL runs on (disagreement)");
    cmd->add_option("--pool", o->pool, "unlabeled questions .jsonl (as collect writes them)")->required();
    cmd->add_option("--exclude", o->exclude, "examples .jsonl whose ids are already labelled (skipped)");
    cmd->add_option("--out", o->out, "selection .jsonl (pool rows + rank, score, strategy, details)")->required();
    cmd->add_option("--strategy", o->strategy, "random, entropy or disagreement")->capture_default_str();
    cmd->add_option("--count", o->select.count, "questions to select (N)")->capture_default_str();
    cmd->add_option("--seed", o->select.seed, "seed of random scores, tie-breaks and sampling")->capture_default_str();
    cmd->add_option("--samples", o->select.samples, "disagreement: answers sampled per question (K)")->capture_default_str();
    cmd->add_option("--temperature", o->select.temperature, "disagreement: sampling temperature")->capture_default_str();
    cmd->add_option("--top-p", o->select.top_p, "disagreement: nucleus mass (1 = off)")->capture_default_str();
    cmd->add_option("--top-k", o->select.top_k, "disagreement: top-k (0 = off)")->capture_default_str();
    cmd->add_option("--max-new-tokens", o->select.max_new_tokens, "tokens per answer at most")->capture_default_str();
    cmd->add_option("--batch-size", o->select.batch_size, "questions per generation batch")->capture_default_str();
    cmd->add_option("--max-rows", o->select.limits.max_rows, "row cap per sampled query")->capture_default_str();
    cmd->add_option("--timeout", o->select.limits.timeout_seconds, "seconds per sampled query")->capture_default_str();
    add_system_prompt_option(*cmd, o->system_prompt);
    cmd->callback([o] {
      o->select.strategy = data::parse_select_strategy(o->strategy);
      std::vector<data::Example> pool = data::read_examples_jsonl(o->pool);
      for (const auto& path : o->exclude) pool = data::exclude_ids(pool, data::read_examples_jsonl(path));
      std::optional<LoadedModel> loaded;
      std::optional<data::QuestionModel> qm;
      if (!o->model.model_dir.empty()) {
        configure_threads(o->model.threads);
        loaded.emplace(data::load_model_with_adapter(o->model.model_dir, o->adapter, parse_device(o->model.device),
                                                     parse_dtype(o->model.dtype), o->model.chat_template));
        qm.emplace(data::make_question_model(*loaded, data::dataset_system_prompt(o->system_prompt)));
      } else if (!o->adapter.empty()) {
        fail("data select: --adapter needs --model");
      }
      std::unique_ptr<data::SqlDatabase> db;
      if (!o->db.empty()) db = std::make_unique<data::SqlDatabase>(o->db);
      const auto selected = data::select_examples(qm ? &*qm : nullptr, db.get(), pool, o->select);
      data::write_selection_jsonl(o->out, selected, o->select.strategy);
      std::printf("selected %zu of %zu questions by %s into %s\n", selected.size(), pool.size(), o->strategy.c_str(),
                  o->out.c_str());
    });
  }
  {
    struct Opts {
      ModelOptions model;
      std::string adapter, db, in, out, system_prompt;
      data::EvaluateOptions eval;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = data->add_subcommand("eval", "execution accuracy of a model (+ adapter) on labelled examples");
    add_model_options(*cmd, o->model);
    cmd->add_option("--adapter", o->adapter, "PEFT LoRA adapter folder applied to --model");
    cmd->add_option("--db", o->db, "inventory database")->required();
    cmd->add_option("--in", o->in, "labelled examples .jsonl (e.g. DIR/test.jsonl)")->required();
    cmd->add_option("--out", o->out, "write the report with every prediction as JSON");
    cmd->add_option("--max-new-tokens", o->eval.max_new_tokens, "tokens per answer at most")->capture_default_str();
    cmd->add_option("--batch-size", o->eval.batch_size, "questions per generation batch")->capture_default_str();
    cmd->add_flag("--json", o->json, "print the summary as JSON");
    add_system_prompt_option(*cmd, o->system_prompt);
    cmd->callback([o] {
      const auto examples = data::read_examples_jsonl(o->in);
      const data::SqlDatabase db(o->db);
      configure_threads(o->model.threads);
      LoadedModel loaded = data::load_model_with_adapter(o->model.model_dir, o->adapter, parse_device(o->model.device),
                                                         parse_dtype(o->model.dtype), o->model.chat_template);
      data::QuestionModel qm = data::make_question_model(loaded, data::dataset_system_prompt(o->system_prompt));
      const auto report = data::evaluate_execution_accuracy(qm, db, examples, o->eval);
      if (!o->out.empty()) {
        nlohmann::json full = report.summary();
        full["predictions"] = report.predictions;
        write_file_atomic(o->out, full.dump(2) + "\n");
      }
      if (o->json) {
        std::printf("%s\n", report.summary().dump().c_str());
      } else {
        std::printf("execution accuracy %.4f (%lld/%lld; no answer %lld, SQL errors %lld)\n", report.accuracy(),
                    static_cast<long long>(report.correct), static_cast<long long>(report.examples),
                    static_cast<long long>(report.no_answer), static_cast<long long>(report.sql_errors));
      }
    });
  }
  {
    struct Opts {
      std::string config, out;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = data->add_subcommand(
        "build", "run db → collect → label → split → format from a YAML config\n\nConfig keys:\n" +
                     data::data_build_config_reference());
    cmd->add_option("--config", o->config, "YAML config (e.g. configs/data-inventory.yaml)")->required();
    cmd->add_option("--out", o->out, "output folder (replaced)")->required();
    cmd->callback([o] {
      const auto manifest = data::build_dataset(data::load_data_build_config(o->config), o->out);
      std::printf("%s\n", manifest["split"].dump().c_str());
    });
  }
  {
    struct Opts {
      std::string dir, tokenizer, chat_template, system_prompt;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = data->add_subcommand("stats", "counts per split, family and language; length percentiles");
    cmd->add_option("dir", o->dir, "dataset folder from `lathe data build`")->required();
    cmd->add_option("--tokenizer", o->tokenizer,
                    "model or tokenizer folder: adds token-length percentiles (question, whole SFT row)");
    cmd->add_option("--chat-template", o->chat_template, "chat format override for the SFT row lengths");
    add_system_prompt_option(*cmd, o->system_prompt);
    cmd->add_flag("--json", o->json, "print JSON instead of a table");
    cmd->callback([o] {
      std::unique_ptr<Tokenizer> tokenizer;
      std::optional<ChatTemplate> chat;
      if (!o->tokenizer.empty()) {
        tokenizer = load_tokenizer(o->tokenizer);
        chat = load_chat_template(o->tokenizer, tokenizer->eos_text(), tokenizer->bos_text(), o->chat_template);
      }
      const auto stats = data::dataset_stats(o->dir, tokenizer.get(), chat ? &*chat : nullptr,
                                             data::dataset_system_prompt(o->system_prompt));
      std::printf("%s", o->json ? (stats.dump(2) + "\n").c_str() : data::format_dataset_stats(stats).c_str());
    });
  }
}

}  // namespace lathe::cli
