// The SFT recipe end to end on a tiny model made from nothing: the loss on a memorisable
// dataset falls below a threshold, a stopped-and-resumed run repeats the uninterrupted run's
// losses exactly, leftover temporary checkpoint folders are ignored, and the run folder has
// its documented layout.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/model_io.h"
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
