// Chunked per-token log-probs against the plain full log_softmax gather (values, entropies,
// gradients w.r.t. hidden states and lm_head, for tied and untied heads and several chunk
// sizes), and packed prompt+completion batches against each sequence run alone.
#include <gtest/gtest.h>

#include <map>
#include <torch/torch.h>

#include "rl/token_logprobs.h"
#include "tests/support/test_models.h"

namespace lathe::rl {
namespace {

// Vocab 61, tied or not: the chunked path must handle both output heads.
CausalLM random_model(bool tied) {
  ModelConfig c = testing::small_gqa_config();
  c.vocab_size = 61;
  c.tie_word_embeddings = tied;
  return testing::random_test_model(c, 3, 0.3);
}

torch::Tensor head_weight(CausalLM& m) { return m->lm_head ? m->lm_head->weight : m->model->embed_tokens->weight; }

TEST(TokenLogProbs, ChunkedEqualsFullLogSoftmaxWithGradients) {
  for (bool tied : {false, true}) {
    CausalLM m = random_model(tied);
    auto W = head_weight(m);
    W.set_requires_grad(true);
    torch::manual_seed(11);
    auto hidden0 = torch::randn({3, 7, 32});
    auto targets = torch::randint(0, 61, {3, 7}, torch::kInt64);
    auto upstream = torch::randn({3, 7});

    auto hidden_ref = hidden0.clone().requires_grad_(true);
    auto ref = reference_token_logprobs(m, hidden_ref, targets);
    (ref.logp * upstream).sum().backward();
    auto grad_h_ref = hidden_ref.grad().clone();
    auto grad_w_ref = W.grad().clone();

    for (int64_t chunk : {1, 4, 7, 100}) {
      W.mutable_grad().zero_();
      auto hidden = hidden0.clone().requires_grad_(true);
      auto got = chunked_token_logprobs(m, hidden, targets, chunk);
      EXPECT_TRUE(torch::allclose(got.logp, ref.logp, 1e-5, 1e-5)) << "chunk " << chunk;
      EXPECT_TRUE(torch::allclose(got.entropy, ref.entropy, 1e-5, 1e-5)) << "chunk " << chunk;
      EXPECT_FALSE(got.entropy.requires_grad());
      (got.logp * upstream).sum().backward();
      EXPECT_TRUE(torch::allclose(hidden.grad(), grad_h_ref, 1e-5, 1e-6)) << "chunk " << chunk;
      EXPECT_TRUE(torch::allclose(W.grad(), grad_w_ref, 1e-5, 1e-6)) << "chunk " << chunk;
    }
  }
}

TEST(TokenLogProbs, PackedBatchEqualsEachSequenceAlone) {
  CausalLM m = random_model(false);
  torch::NoGradGuard g;
  const std::vector<std::vector<int32_t>> prompts{{5, 9, 2}, {7}, {1, 2, 3, 4, 5}};
  const std::vector<std::vector<int32_t>> completions{{10, 11}, {12, 13, 14, 15}, {}};
  const auto packed = pack_sequences(prompts, completions, torch::kCPU);
  EXPECT_EQ(packed.prompt_width, 5);
  EXPECT_EQ(packed.completion_ids.size(1), 4);
  EXPECT_TRUE(torch::equal(packed.completion_mask.sum(1), torch::tensor({2.0f, 4.0f, 0.0f})));
  const auto batch = completion_logprobs(m, packed, 3);
  for (size_t i = 0; i < 2; ++i) {
    std::vector<int64_t> ids(prompts[i].begin(), prompts[i].end());
    ids.insert(ids.end(), completions[i].begin(), completions[i].end());
    auto logits = m->forward_full(torch::tensor(ids).view({1, -1}));        // [1, L, V]
    auto logp_all = torch::log_softmax(logits[0], -1);
    for (size_t t = 0; t < completions[i].size(); ++t) {
      const int64_t pos = static_cast<int64_t>(prompts[i].size() + t) - 1;
      EXPECT_NEAR(batch.logp[i][t].item<float>(), logp_all[pos][completions[i][t]].item<float>(), 1e-5);
    }
  }
}

TEST(TokenLogProbs, SharedPromptPrefixRunsOnceWithTheSameLogProbsAndGradients) {
  CausalLM m = random_model(false);
  // Three prompts that open with the same 20 tokens (a system prompt), then differ in length.
  std::vector<int32_t> system;
  for (int32_t k = 0; k < 20; ++k) system.push_back(3 + (k * 7) % 40);
  std::vector<std::vector<int32_t>> prompts(3, system);
  prompts[0].insert(prompts[0].end(), {41, 42});
  prompts[1].insert(prompts[1].end(), {43, 44, 45, 46});
  prompts[2].insert(prompts[2].end(), {47});
  const std::vector<std::vector<int32_t>> completions{{10, 11, 12}, {13}, {14, 15}};
  const auto shared = pack_sequences(prompts, completions, torch::kCPU);
  const auto whole = pack_sequences(prompts, completions, torch::kCPU, /*share_prefix=*/false);
  ASSERT_TRUE(shared.prefix_ids.defined()) << "the batch must take the shared path";
  EXPECT_EQ(shared.prefix_ids.size(1), 20);
  EXPECT_EQ(shared.prompt_width, 4);
  EXPECT_FALSE(whole.prefix_ids.defined());
  const auto run = [&](const PackedSequences& batch, bool checkpointing) {
    m->set_activation_checkpointing(checkpointing);
    m->zero_grad();
    auto lp = completion_logprobs(m, batch, 2);
    (lp.logp * batch.completion_mask).sum().backward();
    std::map<std::string, torch::Tensor> grads;
    for (const auto& p : m->named_parameters(true)) grads[p.key()] = p.value().grad().clone();
    m->set_activation_checkpointing(false);
    return std::make_pair(lp.logp.detach() * batch.completion_mask, grads);
  };
  const auto ref = run(whole, false);
  for (bool checkpointing : {false, true}) {
    SCOPED_TRACE(checkpointing ? "activation checkpointing (the prefix back in every row)" : "shared prefix");
    const auto got = run(shared, checkpointing);
    EXPECT_TRUE(torch::allclose(got.first, ref.first, 1e-5, 1e-5));
    // Summed log-probs give gradients up to ~30 here; the layouts add in other orders, so
    // each gradient is compared at its own scale.
    for (const auto& [key, g] : ref.second) {
      const double difference = (got.second.at(key) - g).abs().max().item<double>();
      EXPECT_LE(difference, 1e-5 * g.abs().max().item<double>() + 1e-6) << key << " of max " << g.abs().max().item<double>();
    }
  }
  // Prompts that share fewer than kMinSharedPrefix tokens are packed whole.
  EXPECT_FALSE(pack_sequences({{1, 2, 3}, {1, 2, 4}}, {{5}, {6}}, torch::kCPU).prefix_ids.defined());
}

}  // namespace
}  // namespace lathe::rl
