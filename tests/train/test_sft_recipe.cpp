// The SFT recipe end to end on a tiny model made from nothing: the loss on a memorisable
// dataset falls below a threshold, a stopped-and-resumed run repeats the uninterrupted run's
// losses exactly, leftover temporary checkpoint folders are ignored, the run folder has its
// documented layout, and full fine-tuning under bf16 autocast (f32 master weights) and with
// activation checkpointing tracks the plain f32 run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/model_io.h"
#include "model/safetensors.h"
#include "tests/support/test_support.h"
#include "train/checkpoint.h"
#include "train/sft.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using ::lathe::testing::TempDir;

// A ~70K-parameter model on the inventory rows; each step takes milliseconds.
Config tiny_config(const std::string& run_dir, int64_t steps, std::vector<std::string> extra = {}) {
  std::vector<std::string> overrides = {
      "run.dir=" + run_dir, "model.init=random", "model.hidden_size=64", "model.intermediate_size=128",
      "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2", "tokenizer.num_merges=200",
      "data.train=configs/data/inventory-sft-train.jsonl", "data.max_seq_len=256", "training.batch_size=4",
      "training.max_steps=" + std::to_string(steps), "training.lr=5e-3", "training.warmup_steps=5",
      "training.threads=2"};
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return resolve_config(sft_config_schema(), "", "", overrides);
}

SftRunOptions quiet() {
  SftRunOptions o;
  o.quiet = true;
  return o;
}

TEST(SftRecipe, FullFineTuneMemorisesTinyDataset) {
  TempDir dir;
  const Config config = tiny_config(dir.file("run"), 100,
                                    {"data.validation=configs/data/inventory-sft-val.jsonl", "eval.every=50",
                                     "training.batch_size=8", "training.lr=1e-2"});
  SftResult r = run_sft(config, quiet());
  ASSERT_EQ(r.losses.size(), 100u);
  EXPECT_GT(r.losses.front(), 5.0);  // ~ln(vocab) at random init
  double tail = 0;
  for (std::size_t i = r.losses.size() - 10; i < r.losses.size(); ++i) tail += r.losses[i] / 10;
  EXPECT_LT(tail, 0.5) << "mean loss of the last 10 steps";
  EXPECT_GT(r.eval_accuracy, 0.4);  // held-out rows share the answer templates
  // Run folder layout.
  for (const char* p : {"config.yaml", "metrics.jsonl", "tokenizer/tokenizer.json", "model/config.json",
                        "model/model.safetensors", "model/tokenizer.json", "best/model.safetensors",
                        "checkpoints/step-100/state.json", "checkpoints/step-100/optimizer.pt",
                        "checkpoints/step-100/rng.pt", "checkpoints/step-100/model/model.safetensors"})
    EXPECT_TRUE(fs::exists(dir.file("run/") + p)) << p;
  // The final folder is a model lathe loads back, with the trained weights.
  LoadedModel m = load_model(dir.file("run/model"), torch::kCPU, torch::kFloat32);
  EXPECT_EQ(m.config.hidden_size, 64);
  // The resolved config reads back as the same config.
  EXPECT_TRUE(load_config(sft_config_schema(), dir.file("run/config.yaml"), {}).differences(config).empty());
}

TEST(SftRecipe, ResumeRepeatsUninterruptedLosses) {
  TempDir dir;
  // Two micro-batches per step and an epoch boundary inside the run (22 rows / 4 = 6 batches).
  const std::vector<std::string> extra = {"training.grad_accum=2"};
  SftResult full = run_sft(tiny_config(dir.file("a"), 8, extra), quiet());
  ASSERT_EQ(full.losses.size(), 8u);

  SftRunOptions stop = quiet();
  stop.stop_after_steps = 3;
  SftResult first = run_sft(tiny_config(dir.file("b"), 8, extra), stop);
  EXPECT_TRUE(first.interrupted);
  ASSERT_EQ(first.losses.size(), 3u);
  ASSERT_TRUE(latest_checkpoint(dir.file("b")));
  SftRunOptions resume = quiet();
  resume.resume = true;
  SftResult rest = run_sft(tiny_config(dir.file("b"), 8, extra), resume);
  EXPECT_EQ(rest.first_step, 4);
  ASSERT_EQ(rest.losses.size(), 5u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(first.losses[i], full.losses[i]) << "step " << i + 1;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(rest.losses[i], full.losses[i + 3]) << "step " << i + 4;
}

TEST(SftRecipe, GradientAccumulationEqualsTheLargerBatch) {
  TempDir dir;
  // File order, so step k of both runs sees the same 4 rows: one batch of 4, or two of 2.
  SftResult one = run_sft(tiny_config(dir.file("a"), 3, {"data.shuffle=false"}), quiet());
  SftResult two = run_sft(
      tiny_config(dir.file("b"), 3, {"data.shuffle=false", "training.batch_size=2", "training.grad_accum=2"}), quiet());
  ASSERT_EQ(two.losses.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(two.losses[i], one.losses[i], 1e-5 * one.losses[i]) << "step " << i + 1;
}

TEST(SftRecipe, LeftoverTemporaryCheckpointIsIgnored) {
  TempDir dir;
  const std::string run = dir.file("run");
  SftRunOptions stop = quiet();
  stop.stop_after_steps = 2;
  run_sft(tiny_config(run, 4), stop);
  // A crash while writing step 3 leaves a half-written temporary folder (no state.json).
  fs::create_directories(run + "/checkpoints/.tmp-step-3-999/model");
  write_file_atomic(run + "/checkpoints/.tmp-step-3-999/model/model.safetensors", "garbage");
  EXPECT_EQ(*latest_checkpoint(run), run + "/checkpoints/step-2");
  SftRunOptions resume = quiet();
  resume.resume = true;
  SftResult r = run_sft(tiny_config(run, 4), resume);
  EXPECT_EQ(r.first_step, 3);
  EXPECT_EQ(r.steps, 4);
  EXPECT_FALSE(fs::exists(run + "/checkpoints/.tmp-step-3-999"));
}

TEST(SftRecipe, FullFineTuneUnderAutocastKeepsF32MasterWeights) {
  TempDir dir;
  SftResult f32 = run_sft(tiny_config(dir.file("a"), 4), quiet());
  SftResult bf16 = run_sft(tiny_config(dir.file("b"), 4, {"training.autocast=bf16"}), quiet());
  ASSERT_EQ(bf16.losses.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(bf16.losses[i], f32.losses[i], 0.02 * f32.losses[i]) << "step " << i + 1;
  EXPECT_NE(bf16.losses.back(), f32.losses.back()) << "autocast changed nothing: is it active?";
  SafetensorsFile file(dir.file("b/model/model.safetensors"));
  for (const auto& n : file.names()) EXPECT_EQ(file.entry(n).dtype, "F32") << n;
}

TEST(SftRecipe, FullFineTuneWithActivationCheckpointingRepeatsLosses) {
  TempDir dir;
  SftResult plain = run_sft(tiny_config(dir.file("a"), 4), quiet());
  SftResult ckpt = run_sft(tiny_config(dir.file("b"), 4, {"training.activation_checkpointing=true"}), quiet());
  ASSERT_EQ(ckpt.losses.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(ckpt.losses[i], plain.losses[i], 1e-6) << "step " << i + 1;
}

TEST(SftRecipe, RefusesToOverwriteOrResumeNothing) {
  TempDir dir;
  SftRunOptions resume = quiet();
  resume.resume = true;
  EXPECT_THROW(run_sft(tiny_config(dir.file("run"), 2), resume), Error);
  run_sft(tiny_config(dir.file("run"), 2), quiet());
  EXPECT_THROW(run_sft(tiny_config(dir.file("run"), 2), quiet()), Error);
  EXPECT_THROW(run_sft(tiny_config(dir.file("x"), 2, {"model.dtype=bf16"}), quiet()), Error);
}

}  // namespace
}  // namespace lathe
