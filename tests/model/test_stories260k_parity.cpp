// Parity with an independent implementation: the pretrained stories260K Llama in Hugging
// Face layout (../shared/fixtures/stories260K-hf) must reproduce llama2.c run.c's greedy
// tokens exactly and its last-prompt-position logits within 1e-4
// (../shared/fixtures/stories260K/reference.json).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <fstream>

#include "model/generate.h"
#include "model/hf_config.h"
#include "model/model_io.h"
#include "tests/support/test_support.h"

namespace lathe {
namespace {

struct Case {
  std::vector<int32_t> prompt, expected;
  std::vector<float> logits;
};

std::vector<Case> read_cases(const std::string& path) {
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in);
  std::vector<Case> cases;
  for (const auto& c : j["cases"]) {
    cases.push_back({c["prompt_token_ids"].get<std::vector<int32_t>>(),
                     c["generated_token_ids"].get<std::vector<int32_t>>(),
                     c["logits_last_prompt_position"].get<std::vector<float>>()});
  }
  return cases;
}

CausalLM load_fixture_model(const std::string& dir) {
  CausalLM model(ModelConfig::load(dir));
  load_weights(model, dir);
  model->eval();
  return model;
}

TEST(Stories260K, LogitsMatchRunC) {
  LATHE_REQUIRE_FIXTURE(dir, "stories260K-hf");
  LATHE_REQUIRE_FIXTURE(ref, "stories260K/reference.json");
  auto model = load_fixture_model(dir);
  torch::NoGradGuard ng;
  for (const auto& c : read_cases(ref)) {
    std::vector<int64_t> ids(c.prompt.begin(), c.prompt.end());
    auto logits = model->forward_full(torch::tensor(ids).view({1, -1}))[0][-1];
    auto expected = torch::tensor(c.logits);
    EXPECT_LT((logits - expected).abs().max().item<double>(), 1e-4) << "prompt of " << ids.size() << " tokens";
  }
}

TEST(Stories260K, GreedyTokensMatchRunCAloneAndBatched) {
  LATHE_REQUIRE_FIXTURE(dir, "stories260K-hf");
  LATHE_REQUIRE_FIXTURE(ref, "stories260K/reference.json");
  auto model = load_fixture_model(dir);
  auto cases = read_cases(ref);
  std::vector<GenerationRequest> requests;
  for (const auto& c : cases) {
    SamplingParams p;
    p.temperature = 0;
    p.max_new_tokens = static_cast<int>(c.expected.size());
    requests.push_back({c.prompt, p});
  }
  // One left-padded batch holding every prompt (lengths 1 to 16) ...
  auto batched = generate(model, nullptr, requests);
  for (size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(batched.completions[i][0].tokens, cases[i].expected) << "case " << i << " in a batch";
  // ... and each prompt alone.
  for (size_t i = 0; i < cases.size(); ++i) {
    auto alone = generate(model, nullptr, {requests[i]});
    EXPECT_EQ(alone.completions[0][0].tokens, cases[i].expected) << "case " << i << " alone";
  }
}

TEST(Stories260K, SaveLoadRoundTripKeepsLogits) {
  LATHE_REQUIRE_FIXTURE(dir, "stories260K-hf");
  auto model = load_fixture_model(dir);
  testing::TempDir tmp;
  save_model(model, tmp.path(), torch::kFloat32, /*max_shard_bytes=*/400000);  // forces shards
  CausalLM reloaded(ModelConfig::load(tmp.path()));
  load_weights(reloaded, tmp.path());
  torch::NoGradGuard ng;
  auto ids = torch::tensor({int64_t{1}, int64_t{403}, int64_t{407}}).view({1, 3});
  EXPECT_TRUE(torch::equal(model->forward_full(ids), reloaded->forward_full(ids)));
}

}  // namespace
}  // namespace lathe
