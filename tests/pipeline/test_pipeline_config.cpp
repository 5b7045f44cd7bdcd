// The pipeline config: recipe keys appear under their stage (and pipeline-set ones do not),
// recipe configs carry the pipeline's values and paths, docs/config.md is current, and bad
// input is one error naming the thing before any work starts.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "pipeline/pipeline.h"
#include "pipeline/pipeline_config.h"
#include "tests/support/test_support.h"

namespace lathe::pipeline {
namespace {

namespace fs = std::filesystem;
using ::lathe::testing::TempDir;

Config resolve(std::vector<std::string> overrides) {
  return resolve_config(pipeline_config_schema(), "", "", overrides);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PipelineConfig, RecipeKeysLiveUnderTheirStage) {
  const ConfigSchema& s = pipeline_config_schema();
  for (const char* key : {"pretrain.training.lr", "pretrain.model.hidden_size", "sft.lora.r", "sft.training.max_steps",
                          "grpo.beta", "grpo.num_generations", "grpo.training.lr", "grpo.rewards.use",
                          "grpo.rewards.sql_execution.weight", "tokenizer.vocab_size", "eval.models",
                          "sft.lora.enabled", "grpo.lora.r", "grpo.lora.target_modules"})
    EXPECT_NE(s.find(key), nullptr) << key;
  // Set by the pipeline itself: offering them would let a config contradict the stage wiring.
  for (const char* key : {"sft.data.train", "sft.model.path", "pretrain.lora.enabled", "pretrain.lora.r",
                          "pretrain.model.init", "grpo.model.path", "grpo.adapter.path", "grpo.adapter.init",
                          "grpo.data.train", "grpo.rewards.sql_execution.database", "sft.run.dir", "sft.training.device", "pretrain.tokenizer.num_merges"})
    EXPECT_EQ(s.find(key), nullptr) << key;
}

TEST(PipelineConfig, RecipeConfigsCarryPipelineValuesAndPaths) {
  const Config c = resolve({"run.seed=7", "run.threads=2", "sft.training.lr=0.003", "sft.lora.r=4", "grpo.beta=0.1",
                            "grpo.training.max_steps=3", "pretrain.model.hidden_size=64"});
  const Config sft = sft_recipe_config(c, "R/sft", "R/pretrain/model", "D/sft_train.jsonl", "D/sft_val.jsonl");
  EXPECT_EQ(sft.get_string("run.dir"), "R/sft");
  EXPECT_EQ(sft.get_string("model.init"), "load");
  EXPECT_EQ(sft.get_string("model.path"), "R/pretrain/model");
  EXPECT_TRUE(sft.get_bool("lora.enabled"));
  EXPECT_EQ(sft.get_int("lora.r"), 4);
  EXPECT_DOUBLE_EQ(sft.get_float("training.lr"), 0.003);
  EXPECT_EQ(sft.get_int("run.seed"), 7);
  EXPECT_EQ(sft.get_int("training.threads"), 2);
  EXPECT_EQ(sft.get_string("data.validation"), "D/sft_val.jsonl");

  const Config pre = pretrain_recipe_config(c, "R/pretrain", "C/train.jsonl", "C/val.jsonl", "R/tokenizer");
  EXPECT_EQ(pre.get_string("model.init"), "random");
  EXPECT_EQ(pre.get_string("tokenizer.path"), "R/tokenizer");
  EXPECT_EQ(pre.get_int("model.hidden_size"), 64);
  EXPECT_TRUE(pre.get_bool("data.train_on_prompt")) << "pretraining scores every token";
  EXPECT_FALSE(pre.get_bool("lora.enabled"));

  const Config grpo = grpo_recipe_config(c, "R/grpo", "B", "R/sft/adapter", "D/grpo_train.jsonl", "D/inventory.sqlite");
  EXPECT_EQ(grpo.get_string("adapter.init"), "load");
  EXPECT_EQ(grpo.get_string("adapter.path"), "R/sft/adapter");
  EXPECT_EQ(grpo.get_string("rewards.sql_execution.database"), "D/inventory.sqlite");
  EXPECT_DOUBLE_EQ(grpo.get_float("grpo.beta"), 0.1);
  EXPECT_EQ(grpo.get_int("training.max_steps"), 3);
}

// sft.lora.enabled=false: SFT trains every weight, and GRPO starts a new adapter (grpo.lora.*)
// over the fine-tuned model instead of continuing one.
TEST(PipelineConfig, FullFineTuningHandsGrpoANewAdapter) {
  const Config c = resolve({"sft.lora.enabled=false", "grpo.lora.r=4", "grpo.lora.alpha=8", "grpo.lora.target_modules=[q_proj]"});
  const Config sft = sft_recipe_config(c, "R/sft", "R/pretrain/model", "D/sft_train.jsonl", "");
  EXPECT_FALSE(sft.get_bool("lora.enabled"));
  const Config grpo = grpo_recipe_config(c, "R/grpo", "R/sft/model", "", "D/grpo_train.jsonl", "D/inventory.sqlite");
  EXPECT_EQ(grpo.get_string("model.path"), "R/sft/model");
  EXPECT_EQ(grpo.get_string("adapter.init"), "new");
  EXPECT_EQ(grpo.get_int("lora.r"), 4);
  EXPECT_DOUBLE_EQ(grpo.get_float("lora.alpha"), 8.0);
  EXPECT_EQ(grpo.get_string_list("lora.target_modules"), std::vector<std::string>{"q_proj"});
  // The pipeline's default for GRPO's own adapter is the SFT adapter's shape.
  EXPECT_EQ(resolve({}).get_int("grpo.lora.r"), 16);
  EXPECT_EQ(resolve({}).get_string_list("grpo.lora.target_modules").size(), 7u);
}

TEST(PipelineConfig, SectionTextChangesOnlyWithItsKeys) {
  const Config a = resolve({}), b = resolve({"sft.training.lr=0.5"});
  EXPECT_EQ(config_section_text(a, {"pretrain."}), config_section_text(b, {"pretrain."}));
  EXPECT_NE(config_section_text(a, {"sft."}), config_section_text(b, {"sft."}));
  EXPECT_NE(config_section_text(a, {"sft."}).find("sft.training.lr: "), std::string::npos);
}

TEST(PipelineConfig, DataKeysBuildTheDataRecipeConfig) {
  const Config c = resolve({"data.db.vehicles=300", "data.collect.per_family=4", "data.split.holdout_families=[count_brand]"});
  const data::DataBuildConfig d = data_build_config(c);
  EXPECT_EQ(d.db.vehicles, 300);
  EXPECT_EQ(d.collect.per_family, 4);
  EXPECT_EQ(d.split.holdout_families, std::vector<std::string>{"count_brand"});
  EXPECT_EQ(d.db.as_of_date, "2024-06-30") << "empty as_of_date keeps the data recipe's default";
}

TEST(PipelineConfig, UnknownStageIsAConfigErrorNamingIt) {
  const std::string e = error_of([] { resolve_config(pipeline_config_schema(), "run:\n  stages: [data, sftt]\n", "x.yaml", {}); });
  EXPECT_NE(e.find("x.yaml:2"), std::string::npos) << e;
  EXPECT_NE(e.find("\"sftt\" is not a valid choice"), std::string::npos) << e;
}

TEST(PipelineConfig, DocsListEveryKey) {
  const std::string docs = read_file("docs/config.md");
  EXPECT_NE(docs.find(pipeline_config_schema().markdown()), std::string::npos)
      << "docs/config.md is stale: paste `lathe pipeline --config-docs` into its lathe pipeline section";
}

TEST(PipelineInputs, EachBadInputIsOneErrorNamingIt) {
  TempDir dir;
  // Missing base model folder.
  std::string e = error_of([&] {
    check_pipeline_inputs(resolve({"run.stages=[data, sft]", "base.path=" + dir.file("nope")}), dir.file("run"));
  });
  EXPECT_NE(e.find("base.path: model folder " + dir.file("nope") + " does not exist"), std::string::npos) << e;
  // A folder that is not a model.
  fs::create_directories(dir.file("empty"));
  e = error_of([&] { check_pipeline_inputs(resolve({"run.stages=[data, sft]", "base.path=" + dir.file("empty")}), dir.file("run")); });
  EXPECT_NE(e.find("no config.json"), std::string::npos) << e;
  // Neither a base nor pretraining.
  e = error_of([&] { check_pipeline_inputs(resolve({"run.stages=[data, sft]"}), dir.file("run")); });
  EXPECT_NE(e.find("base.path is empty"), std::string::npos) << e;
  // A stage without its input.
  e = error_of([&] { check_pipeline_inputs(resolve({"run.stages=[data, grpo]", "base.path=x"}), dir.file("run")); });
  EXPECT_NE(e.find("stage grpo needs stage sft"), std::string::npos) << e;
  fs::create_directories(dir.file("model"));
  write_file_atomic(dir.file("model/config.json"), "{}");
  e = error_of([&] {
    check_pipeline_inputs(resolve({"run.stages=[data, eval]", "eval.models=[base, grpo]", "base.path=" + dir.file("model")}),
                          dir.file("run"));
  });
  EXPECT_NE(e.find("eval.models names grpo but run.stages has no grpo stage"), std::string::npos) << e;
  // A dataset with no rows.
  fs::create_directories(dir.file("data"));
  for (const char* f : {"inventory.sqlite", "sft_train.jsonl", "sft_val.jsonl", "grpo_train.jsonl", "test.jsonl"})
    write_file_atomic(dir.file(std::string("data/") + f), "");
  e = error_of([&] {
    check_pipeline_inputs(resolve({"run.stages=[data, corpus, tokenizer, pretrain, sft]", "data.dir=" + dir.file("data")}),
                          dir.file("run"));
  });
  EXPECT_NE(e.find("dataset " + dir.file("data/sft_train.jsonl") + " has no rows"), std::string::npos) << e;
  // An unwritable run folder (under a file: fails for root too).
  write_file_atomic(dir.file("file"), "x");
  e = error_of([&] { check_pipeline_inputs(resolve({"run.stages=[data]"}), dir.file("file/run")); });
  EXPECT_NE(e.find("run folder " + dir.file("file/run")), std::string::npos) << e;
  // One line each.
  EXPECT_EQ(e.find('\n'), std::string::npos);
  // Good input passes and leaves no probe file behind.
  check_pipeline_inputs(resolve({"run.stages=[data]"}), dir.file("run"));
  EXPECT_TRUE(fs::is_empty(dir.file("run")));
}

}  // namespace
}  // namespace lathe::pipeline
