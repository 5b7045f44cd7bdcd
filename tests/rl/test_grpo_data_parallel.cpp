// `lathe grpo` data-parallel, black box: `lathe launch --nproc 2` on loopback (Gloo) against one
// process with twice the batch, on a tiny model `lathe sft` makes from nothing, rewarded by a
// deterministic external program (the command reward). Each rank generates whole groups with
// seeds that do not depend on the number of ranks, so the two runs see the same completions;
// rewards are gathered (scale_rewards=batch spans both ranks), the loss normalisers are global,
// and so the losses, KL, reward metrics and the adapter agree (within 1e-5). bnpo with μ = 2
// matches one process whose micro-batches are the ranks' batches (TRL's per-device bnpo).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/test_support.h"
#include "train/distributed.h"

namespace lathe {
namespace {

using testing::TempDir;

class GrpoDataParallel : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!distributed_backend_built("gloo")) GTEST_SKIP() << "this lathe was built without c10d's Gloo backend";
    // Share of vowels in the completion: dense, varied within a group, deterministic.
    std::ofstream(dir_.file("reward.py")) << "import json, sys\n"
                                             "for line in sys.stdin:\n"
                                             "    cs = json.loads(line)['completions']\n"
                                             "    s = [sum(ch in 'aeiou' for ch in c) / max(len(c), 1) for c in cs]\n"
                                             "    print(json.dumps({'scores': s}), flush=True)\n";
    const auto model = testing::run_shell(
        testing::lathe_binary() + " sft --config configs/sft-tiny.yaml run.dir=" + dir_.file("base") +
        " model.hidden_size=64 model.intermediate_size=128 tokenizer.num_merges=200 training.max_steps=2"
        " training.threads=1 data.validation= eval.every=0 checkpoint.every=0");
    ASSERT_EQ(model.exit_code, 0) << model.output;
  }

  std::string grpo(const std::string& run, int batch, const std::string& extra) const {
    return testing::lathe_binary() + " grpo --config configs/grpo-tiny.yaml run.dir=" + dir_.file(run) +
           " model.path=" + dir_.file("base/model") + " 'rewards.use=[command]' 'rewards.command.program=python3 " +
           dir_.file("reward.py") + "' grpo.num_generations=4 grpo.max_completion_length=8 training.batch_size=" +
           std::to_string(batch) + " training.max_steps=3 training.threads=1 checkpoint.every=0"
           " log.rollouts_every=1 'lora.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]'"
           " distributed.timeout_seconds=60 " + extra;
  }

  // Both runs, then every per-step metric that must agree and the adapters.
  void expect_same_training(const std::string& one_extra, const std::string& two_extra) {
    const auto one = testing::run_shell(grpo("one", 16, one_extra));
    ASSERT_EQ(one.exit_code, 0) << one.output;
    const auto two = testing::run_shell(testing::lathe_binary() + " launch --nproc 2 -- " + grpo("two", 8, two_extra));
    ASSERT_EQ(two.exit_code, 0) << two.output;
    for (const char* key : {"loss", "kl", "reward", "reward_std", "frac_reward_zero_std", "advantage_std",
                            "completions/mean_length", "entropy", "grad_norm"}) {
      const auto a = testing::jsonl_numbers(dir_.file("one/metrics.jsonl"), key);
      const auto b = testing::jsonl_numbers(dir_.file("two/metrics.jsonl"), key);
      ASSERT_EQ(a.size(), 3u) << key;
      ASSERT_EQ(b.size(), 3u) << key << ": rank 0 alone writes metrics.jsonl";
      for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << key << " at step " << i + 1;
    }
    const auto rewards = testing::jsonl_numbers(dir_.file("one/metrics.jsonl"), "reward_std");
    EXPECT_GT(rewards[0], 0.01) << "rewards vary, so the advantages are not all zero";
    // Every completion of every step, from both ranks, in rollouts.jsonl.
    EXPECT_EQ(testing::jsonl_numbers(dir_.file("two/rollouts.jsonl"), "reward"),
              testing::jsonl_numbers(dir_.file("one/rollouts.jsonl"), "reward"));
    EXPECT_EQ(testing::jsonl_numbers(dir_.file("two/rollouts.jsonl"), "reward").size(), 48u);
    EXPECT_LT(testing::max_abs_difference(dir_.file("one/adapter/adapter_model.safetensors"),
                                          dir_.file("two/adapter/adapter_model.safetensors")),
              1e-5);
  }

  TempDir dir_;
};

// One process sums the 16 sequences' gradients in one pass, the two ranks 8 + 8: the same
// values up to f32 rounding, which AdamW amplifies in the near-zero lora_A gradients (B starts
// at zero). At lr 0.05 the adapters then differ by 2.3e-4 — exactly as much as one process with
// training.micro_batch_size=8 differs from one without — and at lr 0.002 by 2.2e-6.
TEST_F(GrpoDataParallel, DapoWithBatchScaledRewardsTrainsAsOneProcess) {
  expect_same_training("grpo.loss_type=dapo grpo.scale_rewards=batch grpo.beta=0.04 training.lr=0.002",
                       "grpo.loss_type=dapo grpo.scale_rewards=batch grpo.beta=0.04 training.lr=0.002");
}

TEST_F(GrpoDataParallel, BnpoNormalisesPerRankBatchAsTrlDoes) {
  expect_same_training("grpo.loss_type=bnpo grpo.num_iterations=2 grpo.beta=0 training.lr=0.05 training.micro_batch_size=8",
                       "grpo.loss_type=bnpo grpo.num_iterations=2 grpo.beta=0 training.lr=0.05");
}

}  // namespace
}  // namespace lathe
