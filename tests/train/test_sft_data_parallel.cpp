// `lathe sft` data-parallel, black box: `lathe launch --nproc 2` on loopback (Gloo) against one
// process with twice the batch, on a tiny model made from nothing. Two processes × batch b
// must give the same losses and the same adapter (within 1e-5) as one process × batch 2b —
// with gradient accumulation, an epoch boundary and a last batch the ranks share unevenly —
// with only rank 0 writing; a 2-process run resumes with 2 processes and refuses 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/test_support.h"
#include "train/distributed.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

class SftDataParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!distributed_backend_built("gloo")) GTEST_SKIP() << "this lathe was built without c10d's Gloo backend";
    // 21 rows: with a global batch of 8 the last batch of an epoch (5 rows) splits 3 / 2.
    std::ifstream in("configs/data/inventory-sft-train.jsonl");
    std::ofstream out(dir_.file("train.jsonl"));
    std::string line;
    for (int i = 0; i < 21 && std::getline(in, line); ++i) out << line << "\n";
  }

  // `lathe sft` on a ~70K-parameter model with a LoRA adapter on every projection.
  std::string sft(const std::string& run, int batch, int steps, const std::string& extra = "") const {
    return testing::lathe_binary() + " sft --config configs/sft-tiny.yaml run.dir=" + dir_.file(run) +
           " model.hidden_size=64 model.intermediate_size=128 model.num_heads=4 model.num_kv_heads=2 "
           "tokenizer.num_merges=200 data.train=" + dir_.file("train.jsonl") +
           " training.batch_size=" + std::to_string(batch) + " training.max_steps=" + std::to_string(steps) +
           " training.grad_accum=2 training.schedule=constant training.warmup_steps=0 training.lr=1e-2"
           " training.threads=1 eval.every=0 checkpoint.every=0 log.every=1 lora.enabled=true lora.r=4"
           " 'lora.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]'"
           " distributed.timeout_seconds=60 " + extra;
  }
  std::string launch2(const std::string& command) const {
    return testing::lathe_binary() + " launch --nproc 2 -- " + command;
  }
  std::vector<double> losses(const std::string& run) const {
    return testing::jsonl_numbers(dir_.file(run + "/metrics.jsonl"), "loss");
  }

  TempDir dir_;
};

TEST_F(SftDataParallel, TwoProcessesTrainAsOneWithTwiceTheBatch) {
  const auto one = testing::run_shell(sft("one", 8, 4));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = testing::run_shell(launch2(sft("two", 4, 4)));
  ASSERT_EQ(two.exit_code, 0) << two.output;

  const auto a = losses("one"), b = losses("two");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u) << "rank 0 alone writes metrics.jsonl: one line per step";
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << "step " << i + 1;
  EXPECT_GT(a.front() - a.back(), 0.05) << "the adapter learns, so the comparison means something";
  const auto eval_a = testing::jsonl_numbers(dir_.file("one/metrics.jsonl"), "eval_loss");
  const auto eval_b = testing::jsonl_numbers(dir_.file("two/metrics.jsonl"), "eval_loss");
  ASSERT_EQ(eval_a.size(), 1u);
  ASSERT_EQ(eval_b.size(), 1u);
  EXPECT_NEAR(eval_a[0], eval_b[0], 1e-5) << "validation sharded over the ranks, sums reduced";
  EXPECT_LT(testing::max_abs_difference(dir_.file("one/adapter/adapter_model.safetensors"),
                                        dir_.file("two/adapter/adapter_model.safetensors")),
            1e-5);

  // Progress comes from rank 0 only; both ranks joined the group.
  EXPECT_NE(two.output.find("[rank 0] step 4/4"), std::string::npos) << two.output;
  EXPECT_EQ(two.output.find("[rank 1] step"), std::string::npos) << two.output;
  EXPECT_NE(two.output.find("distributed: rank 1 of 2 (gloo"), std::string::npos) << two.output;
  EXPECT_TRUE(fs::exists(dir_.file("two/checkpoints/step-4/state.json")));
}

TEST_F(SftDataParallel, ResumeNeedsTheSameNumberOfProcesses) {
  const auto straight = testing::run_shell(launch2(sft("straight", 4, 4)));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  const auto first = testing::run_shell(launch2(sft("resumed", 4, 2)));
  ASSERT_EQ(first.exit_code, 0) << first.output;

  const auto alone = testing::run_shell(sft("resumed", 8, 4, "--resume"));
  EXPECT_NE(alone.exit_code, 0);
  EXPECT_NE(alone.output.find("was written by a run of 2 process(es), this one has 1: resume it with 2"),
            std::string::npos)
      << alone.output;

  const auto rest = testing::run_shell(launch2(sft("resumed", 4, 4, "--resume")));
  ASSERT_EQ(rest.exit_code, 0) << rest.output;
  const auto a = losses("straight"), b = losses("resumed");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "step " << i + 1;
  EXPECT_EQ(testing::max_abs_difference(dir_.file("straight/adapter/adapter_model.safetensors"),
                                        dir_.file("resumed/adapter/adapter_model.safetensors")),
            0.0);
}

}  // namespace
}  // namespace lathe
