// Activation checkpointing against the plain forward/backward on the same weights: the loss
// and every trainable gradient agree (LoRA with dropout, whose masks the recompute must
// replay; full fine-tuning; under bf16 autocast), the random-number generator ends where the
// plain run leaves it, and peak tensor memory on a longer sequence is lower (measured by
// counting LibTorch's CPU allocations; the figures are printed, timing is not asserted).
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <cstring>
#include <map>

#include "model/autocast.h"
#include "model/lora.h"
#include "model/model_init.h"

namespace lathe {
namespace {

ModelConfig small_config(int64_t layers = 2) {
  ModelConfig c;
  c.model_type = "qwen2";
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 100;
  c.max_position_embeddings = 1024;
  c.qkv_bias = true;
  return c;
}

struct StepResult {
  double loss = 0;
  std::map<std::string, torch::Tensor> grads;  // every parameter that requires grad
  torch::Tensor next_random;                   // a draw from the generator after the step
};

StepResult train_step(CausalLM& model, bool checkpointing, const torch::Tensor& ids, uint64_t seed,
                      bool autocast = false) {
  model->set_activation_checkpointing(checkpointing);
  model->zero_grad();
  torch::manual_seed(seed);
  torch::Tensor loss;
  {
    std::optional<AutocastScope> scope;
    if (autocast) scope.emplace(torch::Device(torch::kCPU), torch::kBFloat16);
    auto logits = model->forward_full(ids);  // [B, T, V]
    const int64_t V = logits.size(-1);
    loss = torch::nn::functional::cross_entropy(logits.narrow(1, 0, ids.size(1) - 1).reshape({-1, V}),
                                                ids.narrow(1, 1, ids.size(1) - 1).reshape({-1}));
  }
  loss.backward();
  StepResult r;
  r.loss = loss.item<double>();
  for (const auto& p : model->named_parameters(true))
    if (p.value().requires_grad()) {
      EXPECT_TRUE(p.value().grad().defined()) << p.key() << (checkpointing ? " (checkpointed)" : "");
      if (p.value().grad().defined()) r.grads[p.key()] = p.value().grad().clone();
    }
  r.next_random = torch::rand({4});
  return r;
}

void expect_same(const StepResult& plain, const StepResult& ckpt, double rtol, double atol) {
  EXPECT_NEAR(ckpt.loss, plain.loss, atol + rtol * std::abs(plain.loss));
  ASSERT_EQ(ckpt.grads.size(), plain.grads.size());
  for (const auto& [key, g] : plain.grads) {
    ASSERT_TRUE(ckpt.grads.count(key)) << key;
    EXPECT_TRUE(torch::allclose(ckpt.grads.at(key), g, rtol, atol))
        << key << ": max difference " << (ckpt.grads.at(key) - g).abs().max().item<double>();
  }
  EXPECT_TRUE(torch::equal(ckpt.next_random, plain.next_random)) << "generator state after backward";
}

torch::Tensor random_ids(int64_t B, int64_t T, int64_t vocab, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randint(0, vocab, {B, T}, gen, torch::kInt64);
}

// B ~ N(0, 0.1) so the adapters change the output and A gets gradients too.
void randomize_lora_b(CausalLM& model) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(11);
  for (auto& p : model->named_parameters(true))
    if (p.key().find(".lora_B.") != std::string::npos) p.value().normal_(0.0, 0.1);
}

CausalLM lora_model(double dropout) {
  CausalLM model(small_config());
  init_random_weights(model, 1, 0.1);
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.dropout = dropout;
  lc.target_modules = lora_target_names();
  add_lora_adapter(model, "default", lc, 5);
  randomize_lora_b(model);
  model->train();
  return model;
}

TEST(ActivationCheckpoint, LoraWithDropoutMatchesPlainRun) {
  CausalLM model = lora_model(0.1);
  const auto ids = random_ids(2, 16, 100, 3);
  const StepResult plain = train_step(model, false, ids, 7);
  const StepResult ckpt = train_step(model, true, ids, 7);
  EXPECT_EQ(plain.grads.size(), 2u * 7 * 2);  // only LoRA parameters train
  expect_same(plain, ckpt, 1e-5, 1e-7);
  // Dropout really draws: another seed gives another loss, so the replay above mattered.
  EXPECT_NE(train_step(model, false, ids, 8).loss, plain.loss);
}

TEST(ActivationCheckpoint, FullFineTuningMatchesPlainRun) {
  CausalLM model(small_config());
  init_random_weights(model, 2, 0.1);
  model->train();
  const auto ids = random_ids(2, 16, 100, 4);
  const StepResult plain = train_step(model, false, ids, 7);
  const StepResult ckpt = train_step(model, true, ids, 7);
  EXPECT_EQ(plain.grads.size(), model->parameters().size());
  expect_same(plain, ckpt, 1e-5, 1e-7);
}

TEST(ActivationCheckpoint, UnderAutocastMatchesPlainAutocastRun) {
  CausalLM model = lora_model(0.1);
  const auto ids = random_ids(2, 16, 100, 5);
  const StepResult plain = train_step(model, false, ids, 7, /*autocast=*/true);
  const StepResult ckpt = train_step(model, true, ids, 7, /*autocast=*/true);
  expect_same(plain, ckpt, 1e-5, 1e-7);
  // The recompute ran in bf16 as the forward did: an f32 recompute would be off by far more.
  const StepResult f32 = train_step(model, false, ids, 7, /*autocast=*/false);
  EXPECT_GT(std::abs(f32.loss - plain.loss), 1e-6);
}

TEST(ActivationCheckpoint, InferenceAndNoGradAreUnaffected) {
  CausalLM model = lora_model(0.0);
  model->set_activation_checkpointing(true);
  const auto ids = random_ids(1, 8, 100, 6);
  torch::NoGradGuard no_grad;
  auto a = model->forward_full(ids);
  model->set_activation_checkpointing(false);
  EXPECT_TRUE(torch::equal(a, model->forward_full(ids)));
}

// Live and peak bytes of CPU tensors, counted by wrapping LibTorch's CPU allocator.
class CountingAllocator : public c10::Allocator {
 public:
  // Both spellings of allocate: const in LibTorch 1.13, non-const from 2.3 on.
  c10::DataPtr allocate(size_t n) const { return counted(n); }
  c10::DataPtr allocate(size_t n) { return counted(n); }
  // Pure virtual from 2.3 on.
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }

  static CountingAllocator& instance() {
    // Never freed: tensors it allocated may outlive the test.
    static CountingAllocator* counter = new CountingAllocator(c10::GetCPUAllocator());
    return *counter;
  }
  void install() { c10::SetCPUAllocator(this, /*priority=*/100); }
  void uninstall() { c10::SetCPUAllocator(inner_, /*priority=*/100); }

  void reset_peak() { peak_.store(live_.load()); }
  int64_t live() const { return live_.load(); }
  int64_t peak() const { return peak_.load(); }

 private:
  explicit CountingAllocator(c10::Allocator* inner) : inner_(inner) {}
  struct Record {
    c10::DataPtr inner;
    size_t bytes;
    const CountingAllocator* owner;
  };
  c10::DataPtr counted(size_t n) const {
    c10::DataPtr inner = inner_->allocate(n);
    void* data = inner.get();
    const auto device = inner.device();
    auto* record = new Record{std::move(inner), n, this};
    const int64_t now = live_.fetch_add(static_cast<int64_t>(n)) + static_cast<int64_t>(n);
    int64_t seen = peak_.load();
    while (now > seen && !peak_.compare_exchange_weak(seen, now)) {
    }
    return {data, record, &release, device};
  }
  static void release(void* ctx) {
    auto* record = static_cast<Record*>(ctx);
    record->owner->live_.fetch_sub(static_cast<int64_t>(record->bytes));
    delete record;  // frees through the inner allocator's deleter
  }
  c10::Allocator* inner_;
  mutable std::atomic<int64_t> live_{0}, peak_{0};
};

TEST(ActivationCheckpoint, PeakMemoryIsLowerOnALongSequence) {
  const int64_t T = 384, layers = 4;
  CausalLM model(small_config(layers));
  init_random_weights(model, 3, 0.1);
  LoraConfig lc;
  lc.target_modules = lora_target_names();
  add_lora_adapter(model, "default", lc, 5);
  model->train();
  const auto ids = random_ids(1, T, 100, 7);
  auto& counter = CountingAllocator::instance();
  counter.install();
  int64_t peak[2];
  for (int ckpt = 0; ckpt < 2; ++ckpt) {
    model->set_activation_checkpointing(ckpt == 1);
    model->zero_grad();
    counter.reset_peak();
    const int64_t before = counter.live();
    auto logits = model->forward_full(ids);
    auto loss = torch::nn::functional::cross_entropy(logits.view({-1, 100}), ids.view({-1}));
    loss.backward();
    peak[ckpt] = counter.peak() - before;
  }
  counter.uninstall();
  std::printf("peak tensor memory, one LoRA step, %ld layers, T=%ld: plain %.1f MB, checkpointed %.1f MB\n",
              static_cast<long>(layers), static_cast<long>(T), peak[0] / 1e6, peak[1] / 1e6);
  EXPECT_LT(peak[1], peak[0] * 0.6);
}

}  // namespace
}  // namespace lathe
