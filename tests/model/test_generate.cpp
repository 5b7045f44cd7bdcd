// Generation: greedy decoding equals an argmax loop over full forwards; seeded sampling is
// reproducible and independent of batch makeup; stop ids and length limits end rows; the
// sampler's distribution follows softmax(logits / T) with top-k / top-p applied.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "model/generate.h"
#include "model/model_init.h"
#include "tests/support/test_models.h"
#include "tests/support/test_support.h"

namespace lathe {
namespace {

CausalLM generate_model() { return testing::random_test_model(testing::tiny_test_config(40), 21, 0.3); }

TEST(Generate, GreedyEqualsArgmaxOverFullForwards) {
  auto m = generate_model();
  SamplingParams p;
  p.temperature = 0;
  p.max_new_tokens = 12;
  std::vector<GenerationRequest> reqs{{{5, 6, 7}, p}, {{9, 1, 2, 3, 4, 8, 11}, p}, {{13}, p}};
  auto result = generate(m, nullptr, reqs);
  ASSERT_EQ(result.completions.size(), 3u);
  for (size_t r = 0; r < reqs.size(); ++r) {
    EXPECT_EQ(result.completions[r][0].tokens, testing::greedy_by_full_forwards(m, reqs[r].prompt, 12)) << "request " << r;
    EXPECT_EQ(result.completions[r][0].finish_reason, "length");
  }
  EXPECT_EQ(result.generated_tokens, 36);
  EXPECT_EQ(result.prompt_tokens, 11);
}

TEST(Generate, SeededSamplingIsReproducibleAndBatchIndependent) {
  auto m = generate_model();
  SamplingParams p;
  p.temperature = 1.0;
  p.top_p = 0.9;
  p.max_new_tokens = 10;
  p.n = 3;
  p.seed = 1234;
  auto alone = generate(m, nullptr, {{{5, 6, 7}, p}});
  SamplingParams other = p;
  other.seed = 99;
  other.n = 2;
  auto batched = generate(m, nullptr, {{{1, 2, 3, 4, 5, 6}, other}, {{5, 6, 7}, p}});
  for (int s = 0; s < 3; ++s) EXPECT_EQ(alone.completions[0][s].tokens, batched.completions[1][s].tokens);
  // The n samples of one request differ from one another (distinct RNG streams).
  EXPECT_NE(alone.completions[0][0].tokens, alone.completions[0][1].tokens);
}

TEST(Generate, StopIdsEndRowsAndRowsLeaveTheBatch) {
  auto m = generate_model();
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = 12;
  auto free_run = generate(m, nullptr, {{{5, 6, 7}, greedy}}).completions[0][0].tokens;
  SamplingParams stopping = greedy;
  stopping.stop_token_ids = {free_run[3]};
  auto result = generate(m, nullptr, {{{5, 6, 7}, stopping}, {{2, 2}, greedy}});
  const auto& c = result.completions[0][0];
  auto first = std::find(free_run.begin(), free_run.end(), free_run[3]) - free_run.begin();
  EXPECT_EQ(c.tokens, std::vector<int32_t>(free_run.begin(), free_run.begin() + first + 1));
  EXPECT_EQ(c.finish_reason, "stop");
  // The other row went on to its full length after the first left the batch.
  EXPECT_EQ(result.completions[1][0].tokens, testing::greedy_by_full_forwards(m, {2, 2}, 12));
}

TEST(Generate, LogprobsAreLogSoftmaxOfTheModel) {
  auto m = generate_model();
  SamplingParams p;
  p.temperature = 0;
  p.max_new_tokens = 3;
  p.logprobs = 2;
  auto c = generate(m, nullptr, {{{4, 5}, p}}).completions[0][0];
  ASSERT_EQ(c.choices.size(), 3u);
  torch::NoGradGuard ng;
  auto logits = m->forward_full(torch::tensor({int64_t{4}, int64_t{5}}).view({1, 2}))[0][-1];
  auto logp = torch::log_softmax(logits, -1);
  EXPECT_NEAR(c.choices[0].logprob, logp[c.tokens[0]].item<float>(), 1e-4);
  ASSERT_EQ(c.choices[0].top.size(), 2u);
  EXPECT_EQ(c.choices[0].top[0].first, c.tokens[0]);  // greedy token is the most likely
  EXPECT_GE(c.choices[0].top[0].second, c.choices[0].top[1].second);
}


// Every step's entropy is that of softmax(raw logits) after the prompt and the tokens before
// it (a direct double-precision formula over full forwards), whatever the temperature.
TEST(Generate, EntropyPerStepIsThatOfTheModelsDistribution) {
  auto m = generate_model();
  for (double temperature : {0.0, 1.5}) {
    SamplingParams p;
    p.temperature = temperature;
    p.seed = 3;
    p.max_new_tokens = 5;
    p.entropy = true;
    const std::vector<int32_t> prompt{4, 5, 6};
    auto c = generate(m, nullptr, {{prompt, p}}).completions[0][0];
    ASSERT_EQ(c.choices.size(), c.tokens.size());
    torch::NoGradGuard ng;
    std::vector<int64_t> ids(prompt.begin(), prompt.end());
    for (size_t t = 0; t < c.tokens.size(); ++t) {
      auto logits = m->forward_full(torch::tensor(ids).view({1, -1}))[0][-1].to(torch::kFloat64);
      auto logp = torch::log_softmax(logits, -1);
      const double expected = -(logp.exp() * logp).sum().item<double>();
      EXPECT_NEAR(c.choices[t].entropy, expected, 1e-4) << "T " << temperature << " step " << t;
      EXPECT_EQ(c.choices[t].token, c.tokens[t]);
      ids.push_back(c.tokens[t]);
    }
  }
}

TEST(Sampler, EntropyOfHandMadeRows) {
  SamplingParams p;
  p.temperature = 0;
  p.entropy = true;
  RowSampler sampler(p, 1);
  const std::vector<float> uniform(4, 0.7f);
  EXPECT_NEAR(sampler.pick(uniform.data(), 4).entropy, std::log(4.0), 1e-6);
  const std::vector<float> peaked{80.0f, 0.0f, 0.0f};
  EXPECT_NEAR(sampler.pick(peaked.data(), 3).entropy, 0.0, 1e-6);
  // p = (1/2, 1/4, 1/4): H = 1.5 ln 2
  const std::vector<float> halves{std::log(2.0f), 0.0f, 0.0f};
  EXPECT_NEAR(sampler.pick(halves.data(), 3).entropy, 1.5 * std::log(2.0), 1e-6);
  p.entropy = false;
  EXPECT_EQ(RowSampler(p, 1).pick(halves.data(), 3).entropy, 0.0f);
}
// Empirical frequencies against the exact filtered distribution.
TEST(Sampler, FrequenciesFollowTemperatureTopKTopP) {
  std::vector<float> logits{2.0f, 1.5f, 1.0f, 0.0f, -1.0f, -3.0f};
  auto expected = [&](double t, int k, double top_p) {
    std::vector<double> p(logits.size());
    for (size_t i = 0; i < p.size(); ++i) p[i] = std::exp(logits[i] / t);
    if (k > 0) for (size_t i = k; i < p.size(); ++i) p[i] = 0;  // logits are sorted already
    double z = 0;
    for (double v : p) z += v;
    double mass = 0;
    size_t cut = p.size();
    for (size_t i = 0; i < p.size(); ++i) {
      mass += p[i] / z;
      if (mass >= top_p) { cut = i + 1; break; }
    }
    for (size_t i = cut; i < p.size(); ++i) p[i] = 0;
    z = 0;
    for (double v : p) z += v;
    for (double& v : p) v /= z;
    return p;
  };
  struct Case { double t; int k; double top_p; };
  for (Case cs : {Case{1.0, 0, 1.0}, Case{0.5, 0, 1.0}, Case{1.0, 3, 1.0}, Case{1.0, 0, 0.8}, Case{2.0, 4, 0.9}}) {
    SamplingParams p;
    p.temperature = cs.t;
    p.top_k = cs.k;
    p.top_p = cs.top_p;
    RowSampler sampler(p, 42);
    std::vector<int> counts(logits.size());
    const int draws = 40000;
    for (int i = 0; i < draws; ++i) counts[sampler.pick(logits.data(), logits.size()).token]++;
    auto want = expected(cs.t, cs.k, cs.top_p);
    for (size_t i = 0; i < logits.size(); ++i) {
      const double sigma = std::sqrt(want[i] * (1 - want[i]) / draws) + 1e-9;
      EXPECT_NEAR(counts[i] / double(draws), want[i], 5 * sigma + 1e-4)
          << "t=" << cs.t << " k=" << cs.k << " p=" << cs.top_p << " token " << i;
    }
  }
}

TEST(Sampler, TopPOnLargeVocabularyMatchesFullSort) {
  // The widening partial sort must pick the same nucleus as sorting everything.
  torch::manual_seed(0);
  auto logits = (torch::randn({50000}) * 3).contiguous();
  SamplingParams p;
  p.top_p = 0.5;
  RowSampler a(p, 7);
  const float* data = logits.data_ptr<float>();
  auto sorted = std::get<0>(torch::sort(torch::softmax(logits, 0), 0, true));
  auto cumulative = sorted.cumsum(0);
  const int64_t nucleus = (cumulative < 0.5).sum().item<int64_t>() + 1;
  const float threshold = sorted[nucleus - 1].item<float>();
  auto probs = torch::softmax(logits, 0);
  for (int i = 0; i < 2000; ++i) {
    int32_t t = a.pick(data, 50000).token;
    ASSERT_GE(probs[t].item<float>(), threshold * (1 - 1e-5));
  }
}

}  // namespace
}  // namespace lathe
