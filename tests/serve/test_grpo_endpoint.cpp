// GRPO rollouts sampled by an OpenAI-compatible endpoint (rl/endpoint_rollout.h), against
// `lathe serve` on loopback: a run whose rollouts come from the server trains exactly like
// the in-process run (the server samples the same tokens for the same seeds, and serves each
// new adapter version), and a server that answers without token ids is a clear error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "model/safetensors.h"
#include "rl/endpoint_rollout.h"
#include "rl/grpo.h"
#include "tests/serve/serve_test_support.h"
#include "tests/support/fake_openai_server.h"

namespace lathe::serve::testing {
namespace {
namespace fs = std::filesystem;
using lathe::testing::TempDir;

// Share of the completion's characters that are 'e' or ' ': varied within a group on a random
// model, so advantages are non-zero and every step moves the adapter.
class LetterShareReward : public rl::RewardFunction {
 public:
  std::vector<double> score(const json&, const std::vector<std::string>& completions) override {
    std::vector<double> out;
    for (const auto& c : completions) {
      double hits = 0;
      for (char ch : c) hits += ch == 'e' || ch == ' ';
      out.push_back(c.empty() ? 0.0 : hits / static_cast<double>(c.size()));
    }
    return out;
  }
};

const bool kRegistered = [] {
  rl::register_reward({"test_letter_share", "share of e and space", {},
                       [](const json&) { return std::make_unique<LetterShareReward>(); }});
  return true;
}();

Config grpo_config(const std::string& data, std::vector<std::string> extra) {
  std::vector<std::string> all{"model.path=" + tiny().model_dir,
                               "model.chat_template=plain",
                               "data.train=" + data,
                               "rewards.use=[test_letter_share]",
                               "lora.r=4",
                               "lora.target_modules=[q_proj, v_proj, down_proj]",
                               "grpo.num_generations=4",
                               "grpo.max_completion_length=10",
                               "training.batch_size=8",
                               "training.max_steps=3",
                               "training.lr=0.05",
                               "training.threads=1"};
  all.insert(all.end(), extra.begin(), extra.end());
  return resolve_config(grpo_config_schema(), "", "test", all);
}

NamedTensors adapter_tensors(const std::string& dir) {
  SafetensorsFile f(dir + "/adapter_model.safetensors");
  NamedTensors out;
  for (const auto& name : f.names()) out.emplace_back(name, f.load(name));
  return out;
}

TEST(GrpoEndpoint, RolloutsFromLatheServeTrainExactlyLikeInProcess) {
  TempDir dir;
  {
    std::ofstream out(dir.file("prompts.jsonl"));
    for (const char* text : {"How many cars", "宝马在上海", "the dealer counted", "SELECT COUNT"})
      out << json{{"prompt", {{{"role", "user"}, {"content", text}}}}}.dump() << "\n";
  }
  auto options = options_for(tiny());
  options.enable_lora = true;
  auto server = start(options);

  GrpoRunOptions local_options;
  local_options.quiet = true;
  local_options.run_dir = dir.file("local");
  const GrpoResult local = run_grpo(grpo_config(dir.file("prompts.jsonl"), {}), local_options);

  GrpoRunOptions remote_options = local_options;
  remote_options.run_dir = dir.file("remote");
  const GrpoResult remote =
      run_grpo(grpo_config(dir.file("prompts.jsonl"), {"rollout.endpoint=" + server->url()}), remote_options);

  ASSERT_EQ(local.step_metrics.size(), 3u);
  ASSERT_EQ(remote.step_metrics.size(), 3u);
  for (size_t s = 0; s < 3; ++s) {
    const auto& a = local.step_metrics[s];
    const auto& b = remote.step_metrics[s];
    // Same sampled tokens → same rewards and lengths; same tokens and weights → same loss.
    EXPECT_DOUBLE_EQ(a["reward"].get<double>(), b["reward"].get<double>()) << "step " << s + 1;
    EXPECT_DOUBLE_EQ(a["completions/mean_length"].get<double>(), b["completions/mean_length"].get<double>());
    EXPECT_NEAR(a["loss"].get<double>(), b["loss"].get<double>(), 1e-6) << "step " << s + 1;
    EXPECT_GT(a["reward_std"].get<double>(), 0.0) << "the reward must vary, or nothing is trained";
    EXPECT_TRUE(b.contains("time/publish_s"));
  }
  // Later steps sampled from later adapter versions: had the server kept serving the first
  // (zero) adapter, step 3's samples, rewards and loss would differ from the local run's.
  const auto a = adapter_tensors(local.run_dir + "/adapter");
  const auto b = adapter_tensors(remote.run_dir + "/adapter");
  ASSERT_EQ(a.size(), b.size());
  double largest_b = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::allclose(a[i].second, b[i].second, 1e-4, 1e-6)) << a[i].first;
    if (a[i].first.find("lora_B") != std::string::npos)
      largest_b = std::max(largest_b, a[i].second.abs().max().item<double>());
  }
  EXPECT_GT(largest_b, 1e-4) << "training moved lora_B away from zero";

  // The server holds the policy under its adapter name; only the newest version stays on disk.
  bool listed = false;
  const Reply models = get(*server, "/v1/models");
  for (const auto& card : models.json_body["data"]) listed |= card["id"] == "lathe-grpo";
  EXPECT_TRUE(listed);
  std::vector<std::string> versions;
  for (const auto& e : fs::directory_iterator(remote.run_dir + "/rollout-adapter"))
    versions.push_back(e.path().filename().string());
  EXPECT_EQ(versions, std::vector<std::string>{"v2"});
}

TEST(GrpoEndpoint, ServerWithoutTokenIdsIsAClearError) {
  lathe::testing::FakeOpenAiServer fake([](const lathe::testing::FakeRequest& r) {
    lathe::testing::FakeReply reply;
    if (r.path == "/v1/completions") {
      json choices = json::array();
      for (int i = 0; i < r.body["n"].get<int>(); ++i)
        choices.push_back({{"index", i}, {"text", "SELECT 1"}, {"finish_reason", "stop"}});
      reply.body = json{{"id", "x"}, {"object", "text_completion"}, {"model", "m"}, {"choices", choices}}.dump();
    } else {
      reply.body = "Success";
      reply.content_type = "text/plain";
    }
    return reply;
  });
  TempDir dir;
  rl::EndpointRolloutOptions o;
  o.endpoint = fake.endpoint();
  rl::EndpointSampler sampler(o, dir.file("published"));
  GenerationRequest request;
  request.prompt = {1, 2, 3};
  request.params.n = 2;
  request.params.max_new_tokens = 4;
  try {
    sampler.sample({request}, 100);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("/v1/completions"), std::string::npos) << what;
    EXPECT_NE(what.find("without token_ids"), std::string::npos) << what;
  }
  // What was asked for: the prompt as ids, n, the adapter name and return_token_ids.
  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].body["prompt"], json({1, 2, 3}));
  EXPECT_EQ(requests[0].body["n"], 2);
  EXPECT_EQ(requests[0].body["model"], "lathe-grpo");
  EXPECT_EQ(requests[0].body["return_token_ids"], true);
}

TEST(GrpoEndpoint, UnreachableEndpointNamesTheUrl) {
  TempDir dir;
  rl::EndpointRolloutOptions o;
  o.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  rl::EndpointSampler sampler(o, dir.file("published"));
  GenerationRequest request;
  request.prompt = {1, 2};
  request.params.n = 2;
  try {
    sampler.sample({request}, 100);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lathe::serve::testing
