// SFT config: docs/config.md holds the table generated from the declarations, every file in
// configs/ that runs `lathe sft` is valid and opens with its command, and every bad setting
// (one key's value, or keys that contradict each other) is an error naming the key before
// the run folder is even created.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/support/test_support.h"
#include "train/sft.h"

namespace lathe {
namespace {

TEST(SftConfig, DocsAreUpToDate) {
  const std::string docs = read_file("docs/config.md");
  EXPECT_NE(docs.find(sft_config_schema().markdown()), std::string::npos)
      << "docs/config.md is stale: regenerate its `lathe sft` table with `lathe sft --config-docs`";
}

TEST(SftConfig, ShippedConfigsAreValidAndSayHowToRunThem) {
  int found = 0;
  for (const auto& entry : std::filesystem::directory_iterator("configs")) {
    const std::string path = entry.path().string();
    if (entry.path().extension() != ".yaml" || entry.path().filename().string().rfind("sft", 0) != 0) continue;
    ++found;
    const std::string text = read_file(path);
    EXPECT_EQ(text.rfind("# lathe sft --config " + path, 0), 0u) << path << " must open with its command";
    const Config c = load_config(sft_config_schema(), path, {});
    EXPECT_FALSE(c.get_string("data.train").empty()) << path;
  }
  EXPECT_GE(found, 1);
}

TEST(SftConfig, BadKeysAreNamed) {
  try {
    resolve_config(sft_config_schema(), "training:\n  batchsize: 1\n", "x.yaml", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "x.yaml:2: unknown key training.batchsize (did you mean training.batch_size?)");
  }
  EXPECT_THROW(resolve_config(sft_config_schema(), "", "", {"lora.target_modules=[qproj]"}), Error);
  EXPECT_THROW(resolve_config(sft_config_schema(), "", "", {"training.batch_size=0"}), Error);
}

// Schema-level errors from a YAML file: FILE:LINE and the key.
TEST(SftConfig, EachBadValueInAFileIsNamedWithItsLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"training:\n  lr: fast\n", "x.yaml:2: training.lr: expected a float"},
      {"training:\n  autocast: fp16\n", "x.yaml:2: training.autocast: \"fp16\" is not a valid choice (valid: none, bf16, auto)"},
      {"training:\n  activation_checkpointing: yes please\n", "x.yaml:2: training.activation_checkpointing: expected true or false"},
      {"lora:\n  r: 0\n", "x.yaml:2: lora.r: 0 is out of range"},
      {"lora:\n  dropout: 1.5\n", "x.yaml:2: lora.dropout: 1.5 is out of range"},
      {"lora:\n  target_modules: [q_proj, qkv]\n", "x.yaml:2: lora.target_modules: \"qkv\" is not a valid choice"},
      {"lora:\n  layers: [-1]\n", "x.yaml:2: lora.layers: -1 is out of range"},
      {"model:\n  dtype: fp8\n", "x.yaml:2: model.dtype: \"fp8\" is not a valid choice"},
      {"data:\n  max_seq_len: 1\n", "x.yaml:2: data.max_seq_len: 1 is out of range"},
      {"checkpoint:\n  keep: 0\n", "x.yaml:2: checkpoint.keep: 0 is out of range"},
  };
  for (const auto& [yaml, expected] : cases) {
    try {
      resolve_config(sft_config_schema(), yaml, "x.yaml", {});
      ADD_FAILURE() << "no error for " << yaml;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(expected, 0), 0u) << e.what();
    }
  }
}

// Settings each key accepts alone but the recipe cannot run: errors that name the key, thrown
// before anything is written.
TEST(SftConfig, ContradictoryOrMissingSettingsAreNamedBeforeAnyWork) {
  ::lathe::testing::TempDir dir;
  const std::string run = dir.file("run");
  const std::vector<std::string> base = {"run.dir=" + run, "model.init=random", "model.hidden_size=32",
                                         "model.intermediate_size=64", "model.num_layers=2", "model.num_heads=4",
                                         "model.num_kv_heads=2", "data.train=configs/data/inventory-sft-train.jsonl",
                                         "training.max_steps=1"};
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"data.train="}, "data.train is empty"},
      {{"data.train=" + dir.file("missing.jsonl")}, "data.train: "},
      {{"data.validation=" + dir.file("missing.jsonl")}, "data.validation: "},
      {{"eval.every=10"}, "eval.every=10 needs data.validation"},
      {{"training.device=tpu"}, "training.device: "},
      {{"model.dtype=bf16"}, "model.dtype=bf16 with full fine-tuning"},
      {{"lora.enabled=true", "lora.dropout=1.0"}, "lora.dropout must be below 1"},
      {{"training.adam_beta2=1.0"}, "training.adam_beta2 must be below 1"},
      {{"training.adam_beta1=1.0"}, "training.adam_beta1 must be below 1"},
      {{"model.init=load"}, "model.path is empty"},
      {{"model.init=load", "model.path=" + dir.file("nowhere")}, "model.path: "},
      {{"model.num_heads=3"}, "model.hidden_size=32 must divide by model.num_heads=3"},
      {{"model.num_kv_heads=3"}, "model.num_heads=4 must divide by model.num_kv_heads=3"},
      {{"model.hidden_size=20", "model.num_heads=4", "model.num_kv_heads=4"}, "must be even"},
      {{"lora.enabled=true", "lora.target_modules=[]"}, "lora.target_modules is empty"},
      {{"lora.enabled=true", "lora.layers=[2]"}, "lora.layers has layer 2 but the model has 2 layers"},
  };
  for (const auto& [extra, expected] : cases) {
    std::vector<std::string> overrides = base;
    overrides.insert(overrides.end(), extra.begin(), extra.end());
    const Config config = resolve_config(sft_config_schema(), "", "", overrides);
    SftRunOptions options;
    options.quiet = true;
    try {
      run_sft(config, options);
      ADD_FAILURE() << "no error for " << extra.back();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << extra.back() << ": " << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(run)) << extra.back() << " created the run folder before failing";
  }
}

}  // namespace
}  // namespace lathe
