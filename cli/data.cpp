// `lathe data …`: the inventory dataset stages as subcommands (db, collect, label, split,
// format, build, stats). Flags only; the work is in data/.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "data/collect.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "data/label.h"
#include "data/pipeline.h"
#include "data/split.h"

namespace lathe::cli {

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
      for (const auto& m : r.messages) log::warn("dropped " + m);
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
      std::string in, sft, grpo;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = data->add_subcommand("format", "write SFT (messages) and/or GRPO (prompt + gold) JSONL");
    cmd->add_option("--in", o->in, "labelled examples .jsonl")->required();
    cmd->add_option("--sft", o->sft, "SFT output .jsonl");
    cmd->add_option("--grpo", o->grpo, "GRPO output .jsonl");
    cmd->callback([o] {
      if (o->sft.empty() && o->grpo.empty()) fail("data format: give --sft and/or --grpo");
      const auto examples = data::read_examples_jsonl(o->in);
      const std::string prompt = data::inventory_system_prompt(data::inventory_schema_sql());
      if (!o->sft.empty()) data::write_sft_jsonl(o->sft, examples, prompt);
      if (!o->grpo.empty()) data::write_grpo_jsonl(o->grpo, examples, prompt);
      std::printf("formatted %zu examples\n", examples.size());
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
      std::string dir;
      bool json = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = data->add_subcommand("stats", "counts per split, family and language; length percentiles");
    cmd->add_option("dir", o->dir, "dataset folder from `lathe data build`")->required();
    cmd->add_flag("--json", o->json, "print JSON instead of a table");
    cmd->callback([o] {
      const auto stats = data::dataset_stats(o->dir);
      std::printf("%s", o->json ? (stats.dump(2) + "\n").c_str() : data::format_dataset_stats(stats).c_str());
    });
  }
}

}  // namespace lathe::cli
