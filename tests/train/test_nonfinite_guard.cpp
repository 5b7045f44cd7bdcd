// NaN/Inf steps: skipped with a count while they are isolated, the run stopped with an error
// naming the step and the key once `limit` come in a row; and the SFT recipe end to end, where
// an absurd learning rate overflows the weights: the run stops instead of saving NaN weights,
// and every checkpoint it left holds finite weights.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "model/safetensors.h"
#include "tests/support/test_support.h"
#include "train/nonfinite_guard.h"
#include "train/sft.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using ::lathe::testing::TempDir;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

TEST(NonFiniteGuard, IsolatedBadStepsAreSkippedAndCounted) {
  NonFiniteGuard guard(3, "training.max_nonfinite_steps");
  EXPECT_TRUE(guard.accept(1.5, 0.7, "step 1"));
  EXPECT_FALSE(guard.accept(kNaN, 0.7, "step 2"));
  EXPECT_FALSE(guard.accept(1.2, kInf, "step 3"));
  EXPECT_TRUE(guard.accept(1.1, 0.6, "step 4"));  // a good step resets the run of bad ones
  EXPECT_FALSE(guard.accept(-kInf, kNaN, "step 5"));
  EXPECT_FALSE(guard.accept(kNaN, kNaN, "step 6"));
  EXPECT_EQ(guard.skipped(), 4);
  try {
    guard.accept(kNaN, kNaN, "step 7");
    FAIL() << "the third bad step in a row must stop the run";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("step 7"), std::string::npos) << what;
    EXPECT_NE(what.find("3 steps in a row"), std::string::npos) << what;
    EXPECT_NE(what.find("training.max_nonfinite_steps=3"), std::string::npos) << what;
  }
}

TEST(NonFiniteGuard, SftRunThatOverflowsStopsAndKeepsFiniteCheckpoints) {
  TempDir dir;
  const Config config = resolve_config(
      sft_config_schema(), "", "",
      {"run.dir=" + dir.file("run"), "model.init=random", "model.hidden_size=32", "model.intermediate_size=64",
       "model.num_layers=1", "model.num_heads=2", "model.num_kv_heads=1", "tokenizer.num_merges=50",
       "data.train=configs/data/inventory-sft-train.jsonl", "data.max_seq_len=256", "training.batch_size=2",
       "training.max_steps=10", "training.lr=1e30", "training.warmup_steps=0", "training.schedule=constant",
       "training.max_nonfinite_steps=2", "checkpoint.every=1", "training.threads=1"});
  SftRunOptions quiet;
  quiet.quiet = true;
  try {
    run_sft(config, quiet);
    FAIL() << "a run whose weights overflow must stop";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 steps in a row were not finite"), std::string::npos) << e.what();
  }
  // Step 1 moved the weights to ~1e30 (finite); steps 2 and 3 were not finite. Step 2 was
  // skipped and checkpointed unchanged; step 3 stopped the run before any save.
  std::vector<double> skipped;
  std::ifstream metrics(dir.file("run/metrics.jsonl"));
  for (std::string line; std::getline(metrics, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("nonfinite_steps")) skipped.push_back(j["nonfinite_steps"].get<double>());
  }
  EXPECT_EQ(skipped, (std::vector<double>{0, 1}));
  EXPECT_FALSE(fs::exists(dir.file("run/model"))) << "no final weights after a failed run";
  int checkpoints = 0;
  for (const auto& e : fs::directory_iterator(dir.file("run/checkpoints"))) {
    if (e.path().filename().string().rfind("step-", 0) != 0) continue;
    ++checkpoints;
    SafetensorsFile f(e.path().string() + "/model/model.safetensors");
    for (const auto& name : f.names())
      EXPECT_TRUE(torch::isfinite(f.load(name)).all().item<bool>()) << e.path() << " " << name;
  }
  EXPECT_EQ(checkpoints, 2);  // step-1 and step-2
}

}  // namespace
}  // namespace lathe
