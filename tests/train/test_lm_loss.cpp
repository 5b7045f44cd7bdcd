// linear_cross_entropy (chunked head + loss with gradients formed in the forward) against
// the plain path (logits, then torch's cross_entropy and autograd): loss, token accuracy and
// every gradient, for chunk sizes that do and do not divide N, a trainable head, tied and
// untied models, LoRA and full fine-tuning, and under bf16 autocast. A batch whose rows share
// a prefix (the system prompt) runs it once: the same loss and gradients as the whole rows.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/autocast.h"
#include "model/lora.h"
#include "model/model_init.h"
#include "train/lm_loss.h"

namespace lathe {
namespace {

namespace F = torch::nn::functional;

TEST(LinearCrossEntropy, MatchesCrossEntropyOfLogitsForAnyChunking) {
  torch::manual_seed(1);
  const int64_t N = 10, C = 6, V = 13;
  const auto h0 = torch::randn({N, C}, torch::kFloat64), w0 = torch::randn({V, C}, torch::kFloat64);
  const auto targets = torch::randint(0, V, {N}, torch::kInt64);
  // Reference in double precision.
  auto h_ref = h0.clone().requires_grad_(), w_ref = w0.clone().requires_grad_();
  auto logits = F::linear(h_ref, w_ref);
  auto ref = F::cross_entropy(logits, targets, F::CrossEntropyFuncOptions().reduction(torch::kSum));
  (ref * 0.5).backward();
  const int64_t ref_correct = logits.argmax(-1).eq(targets).sum().item<int64_t>();
  for (int64_t chunk : {1, 3, 4, 10, 64}) {
    auto h = h0.to(torch::kFloat32).requires_grad_(), w = w0.to(torch::kFloat32).requires_grad_();
    LmLoss l = linear_cross_entropy(h, w, targets, chunk);
    (l.loss_sum * 0.5).backward();
    EXPECT_NEAR(l.loss_sum.item<double>(), ref.item<double>(), 1e-4) << "chunk " << chunk;
    EXPECT_EQ(l.tokens, N);
    EXPECT_EQ(l.correct, ref_correct);
    EXPECT_TRUE(torch::allclose(h.grad().to(torch::kFloat64), h_ref.grad(), 1e-5, 1e-6)) << "chunk " << chunk;
    EXPECT_TRUE(torch::allclose(w.grad().to(torch::kFloat64), w_ref.grad(), 1e-5, 1e-6)) << "chunk " << chunk;
  }
  // Training steps skip the accuracy count; the loss is the same.
  const LmLoss uncounted = linear_cross_entropy(h0.to(torch::kFloat32), w0.to(torch::kFloat32), targets, 4, false);
  EXPECT_EQ(uncounted.correct, -1);
  EXPECT_NEAR(uncounted.loss_sum.item<double>(), ref.item<double>(), 1e-4);
  // Without grad mode: the loss alone, nothing to differentiate.
  torch::NoGradGuard no_grad;
  auto w = w0.to(torch::kFloat32).requires_grad_();
  LmLoss l = linear_cross_entropy(h0.to(torch::kFloat32), w, targets, 4);
  EXPECT_FALSE(l.loss_sum.requires_grad());
  EXPECT_NEAR(l.loss_sum.item<double>(), ref.item<double>(), 1e-4);
}

ModelConfig small_config(bool tied) {
  ModelConfig c;
  c.model_type = tied ? "qwen2" : "llama";
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.vocab_size = 300;
  c.max_position_embeddings = 64;
  c.tie_word_embeddings = tied;
  c.qkv_bias = tied;
  return c;
}

struct Batch {
  torch::Tensor ids, mask, labels;
};

// Two rows, the second right-padded, prompt positions unscored.
Batch sample_batch() {
  torch::manual_seed(2);
  Batch b;
  b.ids = torch::randint(0, 300, {2, 12}, torch::kInt64);
  b.mask = torch::ones({2, 12}, torch::kInt64);
  b.mask.narrow(1, 9, 3)[1].fill_(0);
  b.labels = torch::full({2, 12}, -100, torch::kInt64);
  b.labels.narrow(1, 3, 8).copy_(b.ids.narrow(1, 4, 8));
  b.labels[1].narrow(0, 8, 4).fill_(-100);
  return b;
}

std::map<std::string, torch::Tensor> grads_of(CausalLM& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model->named_parameters(true))
    if (p.value().grad().defined()) out[p.key()] = p.value().grad().clone();
  return out;
}

struct LossAndGrads {
  LmLoss loss;
  std::map<std::string, torch::Tensor> grads;
};

LossAndGrads run_loss(CausalLM& model, bool reference, bool autocast) {
  const Batch b = sample_batch();
  model->zero_grad();
  LossAndGrads out;
  {
    std::optional<AutocastScope> scope;
    if (autocast) scope.emplace(torch::Device(torch::kCPU), torch::kBFloat16);
    out.loss = reference ? causal_lm_loss_reference(model, b.ids, b.mask, b.labels)
                         : causal_lm_loss(model, b.ids, b.mask, b.labels);
  }
  (out.loss.loss_sum / static_cast<double>(out.loss.tokens)).backward();
  out.grads = grads_of(model);
  return out;
}

void expect_matches_reference(CausalLM& model) {
  const LossAndGrads ref = run_loss(model, true, false), fast = run_loss(model, false, false);
  EXPECT_EQ(fast.loss.tokens, 13);
  EXPECT_EQ(fast.loss.tokens, ref.loss.tokens);
  EXPECT_EQ(fast.loss.correct, ref.loss.correct);
  EXPECT_NEAR(fast.loss.loss_sum.item<double>(), ref.loss.loss_sum.item<double>(), 1e-5 * ref.loss.loss_sum.item<double>());
  ASSERT_EQ(fast.grads.size(), ref.grads.size());
  ASSERT_FALSE(ref.grads.empty());
  for (const auto& [key, g] : ref.grads) {
    ASSERT_TRUE(fast.grads.count(key)) << key;
    const auto& f = fast.grads.at(key);
    EXPECT_TRUE(torch::allclose(f, g, 1e-4, 1e-6)) << key << ": max difference " << (f - g).abs().max().item<double>();
  }
}

// Under bf16 autocast the two paths round in different places (the 1/N scale comes before the
// cast on one side, after it on the other), so each is compared with the f32 result: the fast
// path may be no further from it than the plain autocast path is (with some slack).
void expect_autocast_as_close_as_reference(CausalLM& model) {
  const LossAndGrads exact = run_loss(model, true, false);
  const LossAndGrads ref = run_loss(model, true, true), fast = run_loss(model, false, true);
  const double loss = exact.loss.loss_sum.item<double>();
  EXPECT_NEAR(fast.loss.loss_sum.item<double>(), ref.loss.loss_sum.item<double>(), 1e-3 * loss);
  for (const auto& [key, g] : exact.grads) {
    const double ref_error = (ref.grads.at(key) - g).norm().item<double>();
    const double fast_error = (fast.grads.at(key) - g).norm().item<double>();
    EXPECT_LT(fast_error, 1.5 * ref_error + 1e-3 * g.norm().item<double>()) << key;
    EXPECT_LT(fast_error, 0.1 * g.norm().item<double>()) << key;
  }
}

TEST(CausalLmLoss, FullFineTuningMatchesReferenceTiedAndUntied) {
  for (bool tied : {false, true}) {
    CausalLM model(small_config(tied));
    init_random_weights(model, 3, 0.2);
    model->train();
    SCOPED_TRACE(tied ? "tied" : "untied");
    expect_matches_reference(model);
  }
}

// A tied model with a LoRA adapter on every projection whose B is non-zero (so the adapter
// changes the output and gets gradients of its own), in training mode.
CausalLM lora_model(uint64_t seed) {
  CausalLM model(small_config(true));
  init_random_weights(model, seed, 0.2);
  LoraConfig lc;
  lc.target_modules = lora_target_names();
  add_lora_adapter(model, "default", lc, seed + 1);
  {
    torch::NoGradGuard g;
    for (auto& p : model->named_parameters(true))
      if (p.key().find(".lora_B.") != std::string::npos) p.value().normal_(0.0, 0.1);
  }
  model->train();
  return model;
}

TEST(CausalLmLoss, LoraMatchesReferenceInF32AndUnderAutocast) {
  CausalLM model = lora_model(4);
  expect_matches_reference(model);
  expect_autocast_as_close_as_reference(model);
}

// Three rows that begin with the same `shared` tokens, then go their own ways; the last one is
// right-padded. Labels score every position from `first_scored` on (0 = train on the prompt).
Batch shared_prefix_batch(int64_t shared, int64_t first_scored) {
  torch::manual_seed(7);
  const int64_t B = 3, T = shared + 10;
  Batch b;
  b.ids = torch::randint(3, 300, {B, T}, torch::kInt64);
  b.ids.narrow(1, 0, shared).copy_(b.ids[0].narrow(0, 0, shared).expand({B, shared}));
  for (int64_t r = 1; r < B; ++r) b.ids[r][shared] = (b.ids[0][shared].item<int64_t>() + r) % 300;  // rows differ here
  b.mask = torch::ones({B, T}, torch::kInt64);
  b.mask[2].narrow(0, T - 4, 4).fill_(0);
  b.labels = torch::full({B, T}, -100, torch::kInt64);
  b.labels.narrow(1, 0, T - 1).copy_(b.ids.narrow(1, 1, T - 1));
  b.labels.narrow(1, 0, first_scored).fill_(-100);
  b.labels[2].narrow(0, T - 5, 5).fill_(-100);  // its last real token and the padding
  return b;
}

TEST(SharedPrefix, LengthIsTheRowsCommonStartOfIdsAndLabels) {
  Batch b = shared_prefix_batch(20, 0);
  // Every position is scored: position 19 predicts the first differing token, so 19 are shared.
  EXPECT_EQ(shared_prefix_length(b.ids, b.mask, b.labels), 19);
  // With the prompt unscored up to there, position 19 (label -100 everywhere) is shared too.
  b = shared_prefix_batch(20, 21);
  EXPECT_EQ(shared_prefix_length(b.ids, b.mask, b.labels), 20);
  // A row that is the prefix and one more token keeps that token for itself.
  b.mask[1].narrow(0, 5, b.mask.size(1) - 5).fill_(0);
  EXPECT_EQ(shared_prefix_length(b.ids, b.mask, b.labels), 4);
  // One row shares nothing with itself; nor do rows that differ at once.
  EXPECT_EQ(shared_prefix_length(b.ids.narrow(0, 0, 1), b.mask.narrow(0, 0, 1), b.labels.narrow(0, 0, 1)), 0);
  b.ids[1][0] = b.ids[0][0].item<int64_t>() + 1;
  EXPECT_EQ(shared_prefix_length(b.ids, b.mask, b.labels), 0);
}

TEST(SharedPrefix, HiddenStatesEqualTheWholeRowsForward) {
  CausalLM model(small_config(false));
  init_random_weights(model, 8, 0.2);
  torch::NoGradGuard no_grad;
  const Batch b = shared_prefix_batch(20, 21);
  const int64_t T = b.ids.size(1), P = 20;
  auto mask = b.mask.to(torch::kBool);
  auto whole = model->forward(b.ids, positions_from_mask(mask), mask, nullptr, LogitsFor::None);
  auto [prefix, rest] = model->forward_shared_prefix(b.ids.narrow(0, 0, 1).narrow(1, 0, P), b.ids.narrow(1, P, T - P),
                                                     b.mask.narrow(1, P, T - P));
  for (int64_t r = 0; r < 3; ++r)
    EXPECT_TRUE(torch::allclose(prefix[0], whole[r].narrow(0, 0, P), 1e-5, 1e-5)) << "row " << r;
  // Real tokens only: padding positions attend differently and are never scored.
  auto real = mask.narrow(1, P, T - P);
  EXPECT_TRUE(torch::allclose(rest.index({real}), whole.narrow(1, P, T - P).index({real}), 1e-5, 1e-5));
}

void expect_shared_prefix_matches_reference(CausalLM& model, int64_t first_scored) {
  const Batch b = shared_prefix_batch(24, first_scored);
  ASSERT_GE(shared_prefix_length(b.ids, b.mask, b.labels), 16) << "the batch must take the shared path";
  const auto run = [&](bool reference) {
    model->zero_grad();
    LossAndGrads out;
    out.loss = reference ? causal_lm_loss_reference(model, b.ids, b.mask, b.labels)
                         : causal_lm_loss(model, b.ids, b.mask, b.labels, true, /*share_prefix=*/true);
    (out.loss.loss_sum / static_cast<double>(out.loss.tokens)).backward();
    out.grads = grads_of(model);
    return out;
  };
  const LossAndGrads ref = run(true), shared = run(false);
  EXPECT_EQ(shared.loss.tokens, ref.loss.tokens);
  EXPECT_EQ(shared.loss.correct, ref.loss.correct);
  EXPECT_NEAR(shared.loss.loss_sum.item<double>(), ref.loss.loss_sum.item<double>(),
              1e-5 * ref.loss.loss_sum.item<double>());
  ASSERT_EQ(shared.grads.size(), ref.grads.size());
  ASSERT_FALSE(ref.grads.empty());
  for (const auto& [key, g] : ref.grads) {
    const auto& f = shared.grads.at(key);
    EXPECT_TRUE(torch::allclose(f, g, 1e-4, 1e-6)) << key << ": max difference " << (f - g).abs().max().item<double>();
  }
}

TEST(SharedPrefix, LossAndGradientsEqualTheWholeRowsWithPromptScoredOrNot) {
  for (bool tied : {false, true}) {
    CausalLM model(small_config(tied));
    init_random_weights(model, 9, 0.2);
    model->train();
    SCOPED_TRACE(tied ? "tied, full fine-tuning" : "untied, full fine-tuning");
    expect_shared_prefix_matches_reference(model, 26);  // SFT: the prefix holds no target
    expect_shared_prefix_matches_reference(model, 0);   // pretraining: the prefix's targets count once per row
  }
  CausalLM model = lora_model(10);
  SCOPED_TRACE("LoRA");
  expect_shared_prefix_matches_reference(model, 26);
}

}  // namespace
}  // namespace lathe
