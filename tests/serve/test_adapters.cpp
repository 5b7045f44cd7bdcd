// LoRA serving: an adapter changes the output and the base is unaffected; requests for the
// base and two adapters sent at once (one batch) each get the greedy text they get alone;
// hot reload replaces the weights (new requests see only the new ones, a running request
// finishes on the weights it started with); unload; --max-loras
// and --max-lora-rank refuse with clear errors, at start and at runtime.
#include <thread>

#include "core/error.h"
#include "tests/serve/serve_test_support.h"

namespace lathe::serve::testing {
namespace {

ServerOptions with_adapters(int max_loras = 3) {
  auto o = options_for(tiny());
  o.lora_modules = {{"inv", tiny().adapter_a, ""}, {"other", tiny().adapter_b, ""}};
  o.scheduler.max_loras = max_loras;
  return o;
}

json completion(const std::string& model, const std::string& prompt, int max_tokens) {
  return {{"model", model}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

std::string text_of(const Reply& r) {
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json_body["choices"][0]["text"].get<std::string>();
}

TEST(Adapters, ModelsListAdaptersWithTheBaseAsParent) {
  auto server = start(with_adapters());
  auto m = get(*server, "/v1/models").json_body["data"];
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0]["id"], "tiny");
  std::map<std::string, json> cards;
  for (const auto& c : m) cards[c["id"]] = c;
  EXPECT_EQ(cards["inv"]["parent"], "tiny");
  EXPECT_EQ(cards["inv"]["root"], tiny().adapter_a);
  EXPECT_TRUE(cards["inv"]["max_model_len"].is_null());
  EXPECT_EQ(cards["other"]["root"], tiny().adapter_b);
}

TEST(Adapters, MixedConcurrentRequestsGetTheirAloneText) {
  Reference ref;
  const std::vector<std::string> prompts{"How many cars", "宝马在上海", "SELECT"};
  const std::vector<std::pair<std::string, std::string>> models{
      {"tiny", ""}, {"inv", tiny().adapter_a}, {"other", tiny().adapter_b}};
  std::map<std::string, std::string> alone;  // model + prompt -> reference text
  for (const auto& [model, dir] : models)
    for (const auto& p : prompts) alone[model + "|" + p] = ref.greedy(ref.encode(p), 20, dir);
  EXPECT_NE(alone["inv|How many cars"], alone["tiny|How many cars"]);  // the adapter changes the output
  EXPECT_NE(alone["other|SELECT"], alone["tiny|SELECT"]);
  EXPECT_NE(alone["inv|SELECT"], alone["other|SELECT"]);

  auto server = start(with_adapters());
  // All nine at once, so they share decode steps; twice over to vary the batch makeup.
  for (int round = 0; round < 2; ++round) {
    std::vector<std::thread> clients;
    std::map<std::string, std::string> got;
    std::mutex m;
    for (const auto& [model, _] : models)
      for (const auto& p : prompts)
        clients.emplace_back([&, model = model, p] {
          auto t = text_of(post(*server, "/v1/completions", completion(model, p, 20)));
          std::lock_guard<std::mutex> lock(m);
          got[model + "|" + p] = t;
        });
    for (auto& c : clients) c.join();
    for (const auto& [key, want] : alone) EXPECT_EQ(got[key], want) << key << " round " << round;
  }
}

TEST(Adapters, HotReloadReplacesTheWeights) {
  Reference ref;
  const auto prompt = ref.encode("How many cars");
  const std::string with_a = ref.greedy(prompt, 16, tiny().adapter_a);
  const std::string with_a2 = ref.greedy(prompt, 16, tiny().adapter_a2);
  ASSERT_NE(with_a, with_a2);
  auto server = start(with_adapters());
  EXPECT_EQ(text_of(post(*server, "/v1/completions", completion("inv", "How many cars", 16))), with_a);

  auto taken = post(*server, "/v1/load_lora_adapter", json{{"lora_name", "inv"}, {"lora_path", tiny().adapter_a2}});
  EXPECT_EQ(taken.status, 400);
  EXPECT_NE(taken.json_body["error"]["message"].get<std::string>().find("has already been loaded"), std::string::npos);

  auto reload = post(*server, "/v1/load_lora_adapter",
                     json{{"lora_name", "inv"}, {"lora_path", tiny().adapter_a2}, {"load_inplace", true}});
  ASSERT_EQ(reload.status, 200) << reload.body;
  EXPECT_EQ(reload.body, "Success: LoRA adapter 'inv' added successfully.");
  EXPECT_EQ(text_of(post(*server, "/v1/completions", completion("inv", "How many cars", 16))), with_a2);
  // Streamed too (nothing of the old weights is reused), and the base is untouched.
  auto st = post_stream(*server, "/v1/completions", completion("inv", "How many cars", 16));
  EXPECT_EQ(stream_texts(st, 1)[0], with_a2);
  EXPECT_EQ(text_of(post(*server, "/v1/completions", completion("tiny", "How many cars", 16))), ref.greedy(prompt, 16));
  // The card now points at the new folder.
  for (const auto& c : get(*server, "/v1/models").json_body["data"])
    if (c["id"] == "inv") {
      EXPECT_EQ(c["root"], tiny().adapter_a2);
    }

  // A new name at runtime, then unloading.
  auto added = post(*server, "/v1/load_lora_adapter", json{{"lora_name", "fresh"}, {"lora_path", tiny().adapter_a}});
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_EQ(text_of(post(*server, "/v1/completions", completion("fresh", "How many cars", 16))), with_a);
  auto gone = post(*server, "/v1/unload_lora_adapter", json{{"lora_name", "fresh"}});
  EXPECT_EQ(gone.status, 200);
  EXPECT_EQ(gone.body, "Success: LoRA adapter 'fresh' removed successfully.");
  EXPECT_EQ(post(*server, "/v1/completions", completion("fresh", "x", 2)).status, 404);
  EXPECT_EQ(post(*server, "/v1/unload_lora_adapter", json{{"lora_name", "fresh"}}).status, 404);
  EXPECT_EQ(post(*server, "/v1/load_lora_adapter", json{{"lora_name", "x"}}).status, 400);  // no path
  EXPECT_EQ(post(*server, "/v1/load_lora_adapter", json{{"lora_name", "x"}, {"lora_path", "/no/such/dir"}}).status, 404);
  auto bad = post(*server, "/v1/load_lora_adapter", json{{"lora_name", "x"}, {"lora_path", tiny().model_dir}});
  EXPECT_EQ(bad.status, 400);  // a model folder is not an adapter
  EXPECT_NE(bad.body.find("adapter_config.json"), std::string::npos) << bad.body;
}

TEST(Adapters, ARunningRequestFinishesOnTheWeightsItStartedWith) {
  Reference ref;
  const auto prompt = ref.encode("the dealer");
  SamplingParams p;
  p.temperature = 0;
  p.max_new_tokens = 400;
  p.ignore_eos = true;
  load_peft_adapter(ref.loaded.model, "old", tiny().adapter_a);
  const std::string old_text = generate(ref.loaded.model, ref.loaded.tokenizer.get(), {{prompt, p}}).completions[0][0].text;
  remove_adapter(ref.loaded.model, "old");
  auto o = with_adapters();
  o.scheduler.max_model_len = 4096;
  auto server = start(o);
  Stream running;
  std::thread client([&] {
    running = post_stream(*server, "/v1/completions",
                          json{{"model", "inv"}, {"prompt", "the dealer"}, {"max_tokens", 400}, {"temperature", 0},
                               {"ignore_eos", true}});
  });
  // Reload as soon as the stream has produced something, while it still runs.
  for (int i = 0; i < 2000 && metric(get(*server, "/metrics").body, "vllm:generation_tokens_total{model_name=\"tiny\"}") < 5; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto reload = post(*server, "/v1/load_lora_adapter",
                     json{{"lora_name", "inv"}, {"lora_path", tiny().adapter_a2}, {"load_inplace", true}});
  ASSERT_EQ(reload.status, 200) << reload.body;
  const bool overlapped = metric(get(*server, "/metrics").body, "vllm:num_requests_running{model_name=\"tiny\"}") == 1;
  client.join();
  ASSERT_TRUE(running.done());
  if (!overlapped) GTEST_SKIP() << "the request finished before the reload (machine too fast to overlap them)";
  EXPECT_EQ(stream_texts(running, 1)[0], old_text);
  EXPECT_EQ(text_of(post(*server, "/v1/completions", completion("inv", "How many cars", 16))),
            ref.greedy(ref.encode("How many cars"), 16, tiny().adapter_a2));
}

TEST(Adapters, LimitsAreEnforcedWithClearErrors) {
  auto server = start(with_adapters(/*max_loras=*/2));
  auto full = post(*server, "/v1/load_lora_adapter", json{{"lora_name", "third"}, {"lora_path", tiny().adapter_a2}});
  EXPECT_EQ(full.status, 400);
  EXPECT_NE(full.body.find("--max-loras is 2"), std::string::npos) << full.body;
  // Replacing in place is not a new adapter.
  EXPECT_EQ(post(*server, "/v1/load_lora_adapter",
                 json{{"lora_name", "other"}, {"lora_path", tiny().adapter_a2}, {"load_inplace", true}})
                .status,
            200);
  ASSERT_EQ(post(*server, "/v1/unload_lora_adapter", json{{"lora_name", "other"}}).status, 200);
  auto rank = post(*server, "/v1/load_lora_adapter", json{{"lora_name", "big"}, {"lora_path", tiny().adapter_rank32}});
  EXPECT_EQ(rank.status, 400);
  EXPECT_NE(rank.body.find("LoRA rank 32 is greater than max_lora_rank 16"), std::string::npos) << rank.body;
  EXPECT_EQ(post(*server, "/v1/completions", completion("big", "x", 2)).status, 404);

  // The same limits at start are lathe::Errors naming the flag.
  auto o = with_adapters(/*max_loras=*/1);
  EXPECT_THROW(
      {
        try {
          Server s(o);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("--max-loras"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  auto r = options_for(tiny());
  r.lora_modules = {{"big", tiny().adapter_rank32, ""}};
  r.scheduler.max_lora_rank = 32;
  EXPECT_NO_THROW(Server s(r));
  r.scheduler.max_lora_rank = 7;
  EXPECT_THROW(Server s(r), Error);  // not one of vLLM's ranks
  r.scheduler.max_lora_rank = 16;
  EXPECT_THROW(Server s(r), Error);
}

TEST(Adapters, RuntimeUpdatesCanBeTurnedOff) {
  auto o = with_adapters();
  o.runtime_lora_updating = false;
  auto server = start(o);
  EXPECT_EQ(post(*server, "/v1/load_lora_adapter", json{{"lora_name", "x"}, {"lora_path", tiny().adapter_a}}).status, 404);
  auto plain = start(options_for(tiny()));  // no --enable-lora
  auto r = post(*plain, "/v1/load_lora_adapter", json{{"lora_name", "x"}, {"lora_path", tiny().adapter_a}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("--enable-lora"), std::string::npos);
}

}  // namespace
}  // namespace lathe::serve::testing
