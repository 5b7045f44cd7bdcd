// The SFT recipe with LoRA: gradients reach only the adapter, the run writes a PEFT adapter
// folder (keys, shapes, config fields), resume with LoRA dropout repeats the uninterrupted
// losses, activation checkpointing repeats the plain run's losses, bf16 autocast stays close
// to f32 with f32 adapter weights, the best-by-eval adapter is kept beside the last, and (with
// the shared fixture) a real small model's loss falls.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "model/fast_linear.h"
#include "model/model_init.h"
#include "model/safetensors.h"
#include "tests/support/test_support.h"
#include "train/lm_loss.h"
#include "train/sft.h"
#include "train/sft_adapter.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using ::lathe::testing::TempDir;

const std::vector<std::string> kAllTargets = {
    "lora.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]"};

Config lora_config(const std::string& run_dir, int64_t steps, std::vector<std::string> extra = {}) {
  std::vector<std::string> overrides = {
      "run.dir=" + run_dir, "model.init=random", "model.hidden_size=64", "model.intermediate_size=128",
      "model.num_layers=2", "model.num_heads=4", "model.num_kv_heads=2", "tokenizer.num_merges=200",
      "data.train=configs/data/inventory-sft-train.jsonl", "data.max_seq_len=256", "training.batch_size=4",
      "training.max_steps=" + std::to_string(steps), "training.lr=5e-3", "training.threads=2",
      "lora.enabled=true", "lora.r=4", "lora.alpha=8"};
  overrides.insert(overrides.end(), kAllTargets.begin(), kAllTargets.end());
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  return resolve_config(sft_config_schema(), "", "", overrides);
}

SftRunOptions quiet() {
  SftRunOptions o;
  o.quiet = true;
  return o;
}

TEST(SftLora, GradientsReachOnlyLoraParameters) {
  ModelConfig mc = preset_config("tiny");
  mc.hidden_size = 32, mc.intermediate_size = 64, mc.num_hidden_layers = 2, mc.num_attention_heads = 4;
  mc.num_key_value_heads = 2, mc.head_dim = 8, mc.vocab_size = 50;
  CausalLM model(mc);
  init_random_weights(model, 1);
  const Config config = lora_config("unused", 1);
  auto params = add_sft_adapter(model, config, 3);
  EXPECT_EQ(params.size(), 2u * 7 * 2);  // A and B on 7 linears in 2 layers
  auto ids = torch::randint(0, 50, {2, 6}, torch::kInt64);
  auto labels = ids.roll(-1, 1);
  LmLoss l = causal_lm_loss(model, ids, torch::ones_like(ids), labels);
  l.loss_sum.backward();
  int lora = 0;
  for (const auto& p : model->named_parameters(true)) {
    const bool is_lora = p.key().find(".lora_") != std::string::npos;
    if (is_lora) {
      ++lora;
      EXPECT_TRUE(p.value().grad().defined()) << p.key();
      // B starts at zero, so A's first gradient is zero; B's is not.
      if (p.key().find(".lora_B.") != std::string::npos) {
        EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
      }
    } else {
      EXPECT_FALSE(p.value().requires_grad()) << p.key();
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
    }
  }
  EXPECT_EQ(lora, 28);
}

TEST(SftLora, RunWritesPeftAdapter) {
  TempDir dir;
  SftResult r = run_sft(lora_config(dir.file("run"), 3), quiet());
  EXPECT_EQ(r.steps, 3);
  const std::string adapter = dir.file("run/adapter");
  ASSERT_TRUE(fs::exists(adapter + "/adapter_config.json"));
  const auto cfg = nlohmann::json::parse(read_file(adapter + "/adapter_config.json"));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 8);
  EXPECT_EQ(cfg["target_modules"].size(), 7u);
  SafetensorsFile file(adapter + "/adapter_model.safetensors");
  const auto names = file.names();
  EXPECT_EQ(names.size(), 28u);
  for (const auto& n : names) {
    EXPECT_EQ(n.rfind("base_model.model.model.layers.", 0), 0u) << n;
    const bool a = n.size() > 14 && n.compare(n.size() - 14, 14, ".lora_A.weight") == 0;
    const bool b = n.size() > 14 && n.compare(n.size() - 14, 14, ".lora_B.weight") == 0;
    EXPECT_TRUE(a || b) << n;
  }
  EXPECT_EQ(file.entry("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").shape,
            (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(file.entry("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").shape,
            (std::vector<int64_t>{64, 4}));
  EXPECT_TRUE(fs::exists(dir.file("run/checkpoints/step-3/adapter/adapter_model.safetensors")));
}

TEST(SftLora, ResumeWithDropoutRepeatsLosses) {
  TempDir dir;
  const std::vector<std::string> extra = {"lora.dropout=0.1"};
  SftResult full = run_sft(lora_config(dir.file("a"), 6, extra), quiet());
  SftRunOptions stop = quiet();
  stop.stop_after_steps = 3;
  run_sft(lora_config(dir.file("b"), 6, extra), stop);
  SftRunOptions resume = quiet();
  resume.resume = true;
  SftResult rest = run_sft(lora_config(dir.file("b"), 6, extra), resume);
  ASSERT_EQ(rest.losses.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rest.losses[i], full.losses[i + 3]) << "step " << i + 4;
}

TEST(SftLora, ActivationCheckpointingRepeatsLosses) {
  TempDir dir;
  // The shared-prefix loss does not run under checkpointing; compare with the whole-row path.
  const std::vector<std::string> extra = {"lora.dropout=0.1", "training.shared_prefix=false"};
  SftResult plain = run_sft(lora_config(dir.file("a"), 4, extra), quiet());
  std::vector<std::string> with = extra;
  with.push_back("training.activation_checkpointing=true");
  SftResult ckpt = run_sft(lora_config(dir.file("b"), 4, with), quiet());
  ASSERT_EQ(ckpt.losses.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(ckpt.losses[i], plain.losses[i], 1e-6) << "step " << i + 1;
}

TEST(SftLora, Bf16AutocastStaysCloseToF32AndKeepsF32Adapter) {
  TempDir dir;
  SftResult f32 = run_sft(lora_config(dir.file("a"), 4), quiet());
  SftResult bf16 = run_sft(lora_config(dir.file("b"), 4, {"training.autocast=bf16"}), quiet());
  ASSERT_EQ(bf16.losses.size(), 4u);
  bool any_different = false;
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(bf16.losses[i], f32.losses[i], 0.02 * f32.losses[i]) << "step " << i + 1;
    any_different = any_different || bf16.losses[i] != f32.losses[i];
  }
  EXPECT_TRUE(any_different) << "autocast changed nothing: is it active?";
  SafetensorsFile file(dir.file("b/adapter/adapter_model.safetensors"));
  for (const auto& n : file.names()) EXPECT_EQ(file.entry(n).dtype, "F32") << n;
}

// training.autocast=auto is bf16 exactly where bf16 matmuls are native (CUDA, avx512_bf16 or
// AMX), and f32 elsewhere: its losses repeat the run it resolves to.
TEST(SftLora, AutoAutocastIsBf16WhereNativeAndF32Elsewhere) {
  const torch::Device cpu(torch::kCPU);
  EXPECT_EQ(autocast_enabled("auto", cpu), cpu_has_native_bf16_matmul());
  EXPECT_TRUE(autocast_enabled("bf16", cpu));
  EXPECT_FALSE(autocast_enabled("none", cpu));
  TempDir dir;
  const bool native = cpu_has_native_bf16_matmul();
  SftResult expected = run_sft(lora_config(dir.file("a"), 3, {std::string("training.autocast=") + (native ? "bf16" : "none")}), quiet());
  SftResult autocast = run_sft(lora_config(dir.file("b"), 3, {"training.autocast=auto"}), quiet());
  ASSERT_EQ(autocast.losses.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(autocast.losses[i], expected.losses[i]) << "step " << i + 1;
}

TEST(SftLora, BestAndLastAdaptersAreKept) {
  TempDir dir;
  SftResult r = run_sft(lora_config(dir.file("run"), 6, {"data.validation=configs/data/inventory-sft-val.jsonl",
                                                         "eval.every=2"}),
                        quiet());
  double best = 1e30;
  int evals = 0;
  std::ifstream metrics(dir.file("run/metrics.jsonl"));
  for (std::string line; std::getline(metrics, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("eval_loss")) best = std::min(best, j["eval_loss"].get<double>()), ++evals;
  }
  EXPECT_EQ(evals, 3);  // steps 2, 4 and the end (6)
  EXPECT_LE(best, r.eval_loss);
  for (const char* folder : {"best", "adapter"})
    EXPECT_TRUE(fs::exists(dir.file("run/") + folder + "/adapter_model.safetensors")) << folder;
  const auto state = nlohmann::json::parse(read_file(dir.file("run/checkpoints/step-6/state.json")));
  EXPECT_DOUBLE_EQ(state["best_eval_loss"].get<double>(), best);
}

TEST(SftLora, ModulesToSaveTrainEmbeddingsSayVllmCannotLoadAndResume) {
  TempDir dir;
  const std::vector<std::string> extra = {"lora.modules_to_save=[embed_tokens, lm_head]"};
  ::testing::internal::CaptureStderr();
  SftResult full = run_sft(lora_config(dir.file("a"), 4, extra), quiet());
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("vLLM cannot"), std::string::npos) << log;
  SafetensorsFile file(dir.file("a/adapter/adapter_model.safetensors"));
  EXPECT_EQ(file.names().size(), 28u + 2);
  const auto cfg = nlohmann::json::parse(read_file(dir.file("a/adapter/adapter_config.json")));
  EXPECT_EQ(cfg["modules_to_save"], nlohmann::json::array({"embed_tokens", "lm_head"}));

  SftRunOptions stop = quiet();
  stop.stop_after_steps = 2;
  run_sft(lora_config(dir.file("b"), 4, extra), stop);
  SftRunOptions resume = quiet();
  resume.resume = true;
  SftResult rest = run_sft(lora_config(dir.file("b"), 4, extra), resume);
  ASSERT_EQ(rest.losses.size(), 2u);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(rest.losses[i], full.losses[i + 2]) << "step " << i + 3;
}

TEST(SftLora, LossFallsOnStories260K) {
  LATHE_REQUIRE_FIXTURE(model_dir, "stories260K-hf");
  TempDir dir;
  const Config config = resolve_config(
      sft_config_schema(), "", "",
      {"run.dir=" + dir.file("run"), "model.init=load", "model.path=" + model_dir,
       "data.train=configs/data/inventory-sft-train.jsonl", "data.max_seq_len=512", "training.batch_size=8",
       "training.max_steps=40", "training.lr=1e-2", "training.threads=2", "lora.enabled=true", "lora.r=16",
       "lora.alpha=32", kAllTargets[0]});
  SftResult r = run_sft(config, quiet());
  ASSERT_EQ(r.losses.size(), 40u);
  double tail = 0;
  for (std::size_t i = 35; i < 40; ++i) tail += r.losses[i] / 5;
  EXPECT_LT(tail, 0.5 * r.losses.front()) << "first " << r.losses.front() << ", last five mean " << tail;
}

}  // namespace
}  // namespace lathe
