// The build recipe end to end on a small config, strict config errors, and stats.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/example.h"
#include "data/pipeline.h"
#include "data/sql_exec.h"
#include "tests/support/test_support.h"

namespace lathe::data {
namespace {

std::string error_of(const std::string& yaml) {
  try {
    parse_data_build_config(yaml, "cfg.yaml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DataConfig, ParsesKeysAndDefaults) {
  const DataBuildConfig c = parse_data_build_config(
      "db:\n  vehicles: 300\n  seed: 9\nsplit:\n  val_fraction: 0.2\n  holdout_families: [a, b]\n", "cfg.yaml");
  EXPECT_EQ(c.db.vehicles, 300);
  EXPECT_EQ(c.db.seed, 9u);
  EXPECT_EQ(c.collect.per_family, 30);
  EXPECT_DOUBLE_EQ(c.split.val_fraction, 0.2);
  EXPECT_DOUBLE_EQ(c.split.test_fraction, 0.1);
  EXPECT_EQ(c.split.holdout_families, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(parse_data_build_config("", "cfg.yaml").db.vehicles, 2000);
  EXPECT_NE(data_build_config_reference().find("split.holdout_families"), std::string::npos);
}

TEST(DataConfig, ErrorsNameKeyAndLine) {
  EXPECT_EQ(error_of("db:\n  vehicle: 3\n"),
            "cfg.yaml:2: unknown key 'db.vehicle' (valid: db.vehicles, db.seed, db.as_of_date, db.from_csv)");
  EXPECT_EQ(error_of("db:\n  seed: 1\n  vehicles: many\n"), "cfg.yaml:3: db.vehicles must be an integer (got 'many')");
  EXPECT_EQ(error_of("dbs:\n  vehicles: 3\n"), "cfg.yaml:1: unknown section 'dbs' (valid: db, collect, label, split, select)");
  EXPECT_EQ(error_of("split:\n  val_fraction: 1.5\n"), "cfg.yaml:2: split.val_fraction must be in [0, 1) (got 1.5)");
  EXPECT_EQ(error_of("split:\n  holdout_families: abc\n"), "cfg.yaml:2: split.holdout_families must be a list of strings");
  EXPECT_EQ(error_of("collect:\n  per_family: 0\n"), "cfg.yaml:2: collect.per_family must be at least 1 (got 0)");
  EXPECT_EQ(error_of("db:\n  as_of_date: 2024-02-30\n"),
            "cfg.yaml:2: db.as_of_date must be a YYYY-MM-DD date (got '2024-02-30')");
  EXPECT_NE(error_of("db: [\n").find("cfg.yaml:"), std::string::npos);
  EXPECT_EQ(error_of("select:\n  strategy: best\n"),
            "cfg.yaml:2: select.strategy: unknown selection strategy 'best' (valid: random, entropy, disagreement)");
  EXPECT_EQ(error_of("select:\n  count: 5\n  strategy: entropy\n"), "cfg.yaml: select.strategy entropy needs select.model");
  EXPECT_EQ(error_of("select:\n  samples: 1\n"), "cfg.yaml:2: select.samples must be at least 2");
  EXPECT_EQ(error_of("select:\n  temperature: 0\n"), "cfg.yaml:2: select.temperature must be above 0");
  EXPECT_EQ(error_of("select:\n  modle: x\n").rfind("cfg.yaml:2: unknown key 'select.modle' (valid: select.count", 0), 0u);
}

TEST(DataBuild, WritesEverySplitAndFormat) {
  testing::TempDir dir;
  std::ofstream(dir.file("q.jsonl")) << "{\"question\": \"宝马一共多少辆？\", \"sql\": \"SELECT COUNT(*) FROM vehicles WHERE brand = '宝马'\"}\n"
                                     << "{\"question\": \"broken\", \"sql\": \"SELECT nope\"}\n"
                                     << "{\"question\": \"unlabeled: how many EVs?\"}\n";
  const DataBuildConfig config = parse_data_build_config(
      "db: {vehicles: 400, seed: 3}\ncollect: {per_family: 8, import: [" + dir.file("q.jsonl") +
          "]}\nsplit: {holdout_families: [count_store]}\nselect: {count: 1}\n",
      "cfg.yaml");
  const std::string out = dir.file("ds");
  const nlohmann::json manifest = build_dataset(config, out);
  for (const char* f : {"inventory.sqlite", "train.jsonl", "val.jsonl", "test.jsonl", "sft_train.jsonl",
                        "sft_val.jsonl", "grpo_train.jsonl", "grpo_val.jsonl", "manifest.json"}) {
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  }
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp-" + std::to_string(::getpid())));
  const auto train = read_examples_jsonl(out + "/train.jsonl");
  const auto val = read_examples_jsonl(out + "/val.jsonl");
  const auto test = read_examples_jsonl(out + "/test.jsonl");
  EXPECT_EQ(manifest["split"]["train"].get<size_t>(), train.size());
  EXPECT_EQ(manifest["label"]["dropped"]["sql_error"].get<int>(), 1);
  EXPECT_EQ(manifest["collect"]["imported_examples"].get<int>(), 3);
  // The question without SQL is the unlabeled pool, not a label drop; select picked it.
  EXPECT_EQ(manifest["collect"]["unlabeled_pool"].get<int>(), 1);
  EXPECT_FALSE(manifest["label"]["dropped"].contains("no_sql"));
  const auto selection = read_examples_jsonl(out + "/selection.jsonl");
  ASSERT_EQ(selection.size(), 1u);
  EXPECT_EQ(selection[0].question, "unlabeled: how many EVs?");
  EXPECT_EQ(read_examples_jsonl(out + "/pool.jsonl").size(), 1u);
  for (const auto& e : train) EXPECT_NE(e.family, "count_store");
  for (const auto& e : val) EXPECT_NE(e.family, "count_store");
  // Every gold result recomputes from the written database.
  SqlDatabase db(out + "/inventory.sqlite");
  for (const auto& e : test) {
    const auto gold = canonical_from_json(e.gold_result);
    EXPECT_TRUE(results_match(gold, canonicalize(db.query(e.sql), has_top_level_order_by(e.sql)))) << e.id;
  }
  // Row counts of the formatted files follow the splits.
  auto lines = [](const std::string& path) {
    const std::string text = read_file(path);
    return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  };
  EXPECT_EQ(lines(out + "/sft_train.jsonl"), train.size());
  EXPECT_EQ(lines(out + "/grpo_val.jsonl"), val.size());

  const nlohmann::json stats = dataset_stats(out);
  EXPECT_EQ(stats["splits"]["test"]["examples"].get<size_t>(), test.size());
  EXPECT_GT(stats["splits"]["train"]["languages"]["zh"].get<int>(), 0);
  EXPECT_GT(stats["splits"]["train"]["languages"]["en"].get<int>(), 0);
  EXPECT_GT(stats["families"]["count_store"]["test"].get<int>(), 0);
  EXPECT_NE(format_dataset_stats(stats).find("count_store: 0/0/"), std::string::npos);

  // Rebuilding with the same config gives identical files.
  const std::string first = read_file(out + "/grpo_train.jsonl");
  build_dataset(config, out);
  EXPECT_EQ(read_file(out + "/grpo_train.jsonl"), first);
}

TEST(DataBuild, UnknownHoldoutFamilyIsAnError) {
  testing::TempDir dir;
  const DataBuildConfig config = parse_data_build_config(
      "db: {vehicles: 100}\ncollect: {per_family: 2}\nsplit:\n  holdout_families: [no_such_family]\n", "cfg.yaml");
  try {
    build_dataset(config, dir.file("ds"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cfg.yaml:4: split.holdout_families: unknown family 'no_such_family'", 0), 0u)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("ds")));
}

}  // namespace
}  // namespace lathe::data
