// The GRPO recipe end to end on the stories260K fixture (a real tiny Llama): config errors,
// β = 0 skipping the reference pass, KL exactly 0 while the fresh adapter is zero, μ > 1
// using the rollout's old log-probs (ratio 1 at the first update, not after), a reward that
// rises over a few steps, and resume repeating the uninterrupted run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/config.h"
#include "core/error.h"
#include "rl/grpo.h"
#include "rl/rewards.h"
#include "model/lora.h"
#include "model/model_io.h"
#include "tests/support/test_support.h"

namespace lathe {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

// Share of the completion's characters that are the letter 'e': dense, varied within a
// group, and reachable by shifting token probabilities — a reward GRPO must raise quickly.
class LetterShareReward : public rl::RewardFunction {
 public:
  std::vector<double> score(const json&, const std::vector<std::string>& completions) override {
    std::vector<double> out;
    for (const auto& c : completions) {
      double e = 0;
      for (char ch : c) e += ch == 'e';
      out.push_back(c.empty() ? 0.0 : e / static_cast<double>(c.size()));
    }
    return out;
  }
};

const bool kRegistered = [] {
  rl::register_reward({"test_letter_e", "share of the letter e", {},
                       [](const json&) { return std::make_unique<LetterShareReward>(); }});
  return true;
}();

void write_prompts(const std::string& path) {
  std::ofstream out(path);
  for (const char* text : {"Once upon a time", "The little dog", "Lily saw a", "Tom and his mom"})
    out << json{{"prompt", {{{"role", "user"}, {"content", text}}}}, {"id", text}}.dump() << "\n";
}

Config tiny_config(const std::string& model, const std::string& data, std::vector<std::string> overrides) {
  std::vector<std::string> all{"model.path=" + model,
                               "data.train=" + data,
                               "rewards.use=[test_letter_e]",
                               "grpo.num_generations=4",
                               "grpo.max_completion_length=12",
                               "training.batch_size=8",
                               "training.max_steps=3",
                               "training.lr=0.01",
                               "training.threads=1",
                               "lora.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]"};
  all.insert(all.end(), overrides.begin(), overrides.end());
  return resolve_config(grpo_config_schema(), "", "test", all);
}

class GrpoRecipe : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fixture = testing::fixture_path("stories260K-hf");
    if (!fixture) GTEST_SKIP() << "../shared/fixtures/stories260K-hf is absent; skipping";
    model_ = *fixture;
    write_prompts(dir_.file("prompts.jsonl"));
  }
  GrpoResult run(const std::string& name, std::vector<std::string> overrides, GrpoRunOptions options = {}) {
    options.quiet = true;
    options.run_dir = dir_.file(name);
    return run_grpo(tiny_config(model_, dir_.file("prompts.jsonl"), std::move(overrides)), options);
  }
  TempDir dir_;
  std::string model_;
};

TEST_F(GrpoRecipe, BatchNotMultipleOfGroupIsAConfigError) {
  try {
    run("bad", {"training.batch_size=6"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("training.batch_size=6 is not a multiple of grpo.num_generations=4"),
              std::string::npos) << e.what();
  }
  EXPECT_THROW(tiny_config(model_, "x", {"rewards.use=[no_such_reward]"}), Error);
}

TEST_F(GrpoRecipe, WritesRunFolderAndBetaZeroSkipsReference) {
  const GrpoResult r = run("run", {"training.max_steps=2"});
  ASSERT_EQ(r.step_metrics.size(), 2u);
  for (const auto& m : r.step_metrics) {
    EXPECT_EQ(m["reference_passes"], 0);
    EXPECT_EQ(m["kl"], 0.0);
    EXPECT_TRUE(m.contains("rewards/test_letter_e/mean"));
    EXPECT_TRUE(m.contains("completions/clipped_ratio"));
  }
  EXPECT_TRUE(fs::exists(r.run_dir + "/adapter/adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(r.run_dir + "/checkpoints/step-2/state.json"));
  std::ifstream rollouts(r.run_dir + "/rollouts.jsonl");
  int lines = 0;
  for (std::string line; std::getline(rollouts, line);) {
    const json j = json::parse(line);
    EXPECT_TRUE(j.contains("advantage") && j.contains("rewards") && j.contains("completion"));
    ++lines;
  }
  EXPECT_EQ(lines, 16);
}

TEST_F(GrpoRecipe, ZeroAdapterGivesExactlyZeroKl) {
  const GrpoResult r = run("kl", {"training.max_steps=2", "grpo.beta=0.1"});
  EXPECT_EQ(r.step_metrics[0]["reference_passes"], 1);
  EXPECT_EQ(r.step_metrics[0]["kl"].get<double>(), 0.0);  // B = 0: policy == base
  EXPECT_GT(r.step_metrics[1]["kl"].get<double>(), 0.0);  // after one update it is not
}

TEST_F(GrpoRecipe, SecondIterationUsesOldLogProbs) {
  const GrpoResult r = run("mu", {"training.max_steps=1", "grpo.num_iterations=2"});
  const auto& it = r.step_metrics[0]["iterations"];
  ASSERT_EQ(it.size(), 2u);
  EXPECT_EQ(it[0]["ratio_mean"].get<double>(), 1.0);
  EXPECT_NE(it[1]["ratio_mean"].get<double>(), 1.0);
}

TEST_F(GrpoRecipe, RewardRises) {
  const GrpoResult r = run("learn", {"training.max_steps=12", "grpo.num_generations=8", "training.batch_size=16"});
  double first = 0, last = 0;
  for (int i = 0; i < 3; ++i) first += r.step_metrics[i]["reward"].get<double>() / 3;
  for (int i = 9; i < 12; ++i) last += r.step_metrics[i]["reward"].get<double>() / 3;
  EXPECT_GT(last, first + 0.03) << "first steps " << first << ", last steps " << last;
}

TEST_F(GrpoRecipe, ResumeRepeatsTheUninterruptedRun) {
  const GrpoResult straight = run("straight", {"training.max_steps=4"});
  GrpoRunOptions stop;
  stop.stop_after_steps = 2;
  const GrpoResult first = run("resumed", {"training.max_steps=4"}, stop);
  EXPECT_TRUE(first.interrupted);
  GrpoRunOptions resume;
  resume.resume = true;
  const GrpoResult second = run("resumed", {"training.max_steps=4"}, resume);
  ASSERT_EQ(second.first_step, 3);
  ASSERT_EQ(second.step_metrics.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(second.step_metrics[i]["reward"].get<double>(), straight.step_metrics[2 + i]["reward"].get<double>(), 1e-9);
    EXPECT_NEAR(second.step_metrics[i]["loss"].get<double>(), straight.step_metrics[2 + i]["loss"].get<double>(), 1e-6);
  }
  EXPECT_THROW(run("resumed", {"training.max_steps=4"}), Error);  // checkpoints there, no --resume
}

}  // namespace
}  // namespace lathe
