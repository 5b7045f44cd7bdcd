// Learning evidence for GRPO with the XML format rewards alone: a tiny model that mostly
// answers without the <reasoning>/<answer> format (it was SFT'd on answers that are three
// quarters plain text) is rewarded by xml_strict + xml_loose + xml_count; over a fixed number of steps
// its mean format reward must rise by a clear margin, for each of two seeds. Needs nothing
// from ../shared: the base model is made here from nothing.
#include <gtest/gtest.h>

#include <fstream>

#include "core/config.h"
#include "rl/grpo.h"
#include "tests/support/test_support.h"
#include "train/sft.h"

namespace lathe {
namespace {
using nlohmann::json;
using testing::TempDir;

const char* kItems[] = {"bolts", "nuts", "screws", "washers", "hinges", "nails", "rivets", "springs"};

std::string formatted(const std::string& item) {
  return "<reasoning>\ncount the " + item + "\n</reasoning>\n<answer>\nSELECT count(*) FROM " + item +
         "\n</answer>\n";
}

// SFT rows: for every question, one answer in four is in the format, the rest plain text.
void write_sft_rows(const std::string& path) {
  std::ofstream out(path);
  for (int repeat = 0; repeat < 8; ++repeat)
    for (int k = 0; k < 8; ++k) {
      const std::string item = kItems[k];
      const std::string question = "How many " + item + " are there?";
      const std::string answer = repeat % 4 == k % 4 ? formatted(item) : "There are some " + item + ".";
      out << json{{"messages", {{{"role", "user"}, {"content", question}}, {{"role", "assistant"}, {"content", answer}}}}}
                 .dump()
          << "\n";
    }
}

void write_grpo_prompts(const std::string& path) {
  std::ofstream out(path);
  for (const char* item : kItems)
    out << json{{"prompt", {{{"role", "user"}, {"content", std::string("How many ") + item + " are there?"}}}},
                {"id", item}}
               .dump()
        << "\n";
}

double mean_reward(const std::vector<json>& steps, size_t begin, size_t end) {
  double sum = 0;
  for (size_t i = begin; i < end; ++i) sum += steps[i]["reward"].get<double>();
  return sum / static_cast<double>(end - begin);
}

TEST(GrpoLearning, XmlRewardsRaiseTheFormatOfAModelThatRarelyUsesIt) {
  TempDir dir;
  write_sft_rows(dir.file("sft.jsonl"));
  write_grpo_prompts(dir.file("prompts.jsonl"));

  // The base: a ~60K-parameter model trained from nothing on the mostly-plain answers.
  SftRunOptions sft_options;
  sft_options.quiet = true;
  const Config sft = resolve_config(
      sft_config_schema(), "", "test",
      {"run.dir=" + dir.file("sft"), "model.init=random", "model.hidden_size=64", "model.intermediate_size=128",
       "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2", "tokenizer.num_merges=150",
       "model.chat_template=plain", "data.train=" + dir.file("sft.jsonl"), "training.batch_size=8",
       "training.max_steps=300", "training.lr=1e-2", "training.warmup_steps=5", "training.threads=2"});
  run_sft(sft, sft_options);

  for (const int seed : {1, 2}) {
    GrpoRunOptions options;
    options.quiet = true;
    options.run_dir = dir.file("grpo-" + std::to_string(seed));
    const Config grpo = resolve_config(
        grpo_config_schema(), "", "test",
        {"run.seed=" + std::to_string(seed), "model.path=" + dir.file("sft/model"), "model.chat_template=plain",
         "data.train=" + dir.file("prompts.jsonl"), "rewards.use=[xml_strict, xml_loose, xml_count]",
         "grpo.num_generations=8", "grpo.max_completion_length=64", "grpo.temperature=1.0", "grpo.beta=0.04",
         "training.batch_size=32", "training.max_steps=30", "training.lr=5e-3", "training.threads=2",
         "lora.r=8", "lora.alpha=16", "lora.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]",
         "log.rollouts_every=0"});
    const GrpoResult r = run_grpo(grpo, options);
    ASSERT_EQ(r.step_metrics.size(), 30u);
    const double first = mean_reward(r.step_metrics, 0, 3);
    const double last = mean_reward(r.step_metrics, 25, 30);
    // The format is worth 1.5 at most (0.5 + 0.5 + 0.5). At lr 1e-2 and 20 steps (this test
    // until 2026-12-04) an AMX Xeon measured 0.1-0.2 over the first 3 steps and 0.55-0.6 over
    // the last 5, but an AVX-512 EPYC (other OpenBLAS kernels, another trajectory) had seed 2
    // collapse at step 5 to one answer scoring 0.36 in every group, for all 30 steps. At 5e-3
    // and 30 steps, seeds 1-4 there: 0.30-0.52 over the first 3, 1.11-1.24 over the last 5.
    // β = 0.04 (TRL's former default) keeps the policy near the base: with β = 0 one seed
    // collapsed to two-token answers whose groups all score 0, leaving nothing to learn from.
    EXPECT_LT(first, 0.5) << "seed " << seed << ": the base should mostly answer without the format";
    EXPECT_GT(last, first + 0.3) << "seed " << seed << ": first 3 steps " << first << ", last 5 steps " << last;
  }
}

}  // namespace
}  // namespace lathe
