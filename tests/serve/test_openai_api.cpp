// The OpenAI/vLLM surface of `lathe serve`, on a server started in-process on a free
// loopback port: every endpoint's shape, greedy text against generate() on the same folder
// loaded independently, streaming (SSE, [DONE], include_usage), stop strings, seeds,
// logprobs against the model's log-softmax, tokenize/detokenize, metrics, a repeated prompt
// opening served from the kept prefix, API keys, the max_tokens cap and every error case with
// its status — after which the server still answers.
#include <algorithm>
#include <cmath>
#include <thread>

#include "tests/serve/serve_test_support.h"

namespace lathe::serve::testing {
namespace {

class OpenAIApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = start(options_for(tiny())).release(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static Server* server_;
  const Server& s() { return *server_; }
};
Server* OpenAIApi::server_ = nullptr;

TEST_F(OpenAIApi, HealthAndModels) {
  auto health = get(s(), "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_TRUE(health.body.empty());
  auto models = get(s(), "/v1/models");
  ASSERT_EQ(models.status, 200);
  const json& m = models.json_body;
  EXPECT_EQ(m["object"], "list");
  ASSERT_EQ(m["data"].size(), 1u);
  const json& card = m["data"][0];
  EXPECT_EQ(card["id"], "tiny");
  EXPECT_EQ(card["object"], "model");
  EXPECT_EQ(card["owned_by"], "lathe");
  EXPECT_EQ(card["root"], tiny().model_dir);
  EXPECT_TRUE(card["parent"].is_null());
  EXPECT_EQ(card["max_model_len"], 256);
  EXPECT_TRUE(card["created"].is_number_integer());
  ASSERT_EQ(card["permission"].size(), 1u);
  EXPECT_EQ(card["permission"][0]["object"], "model_permission");
}

TEST_F(OpenAIApi, CompletionsGreedyEqualsGenerate) {
  Reference ref;
  auto r = post(s(), "/v1/completions",
                json{{"model", "tiny"}, {"prompt", "How many cars"}, {"max_tokens", 12}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json& j = r.json_body;
  EXPECT_EQ(j["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "tiny");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["text"], ref.greedy(ref.encode("How many cars"), 12));
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  const int64_t prompt_tokens = ref.encode("How many cars").size();
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt_tokens);
  const int64_t completion_tokens = j["usage"]["completion_tokens"];
  EXPECT_EQ(j["usage"]["total_tokens"], prompt_tokens + completion_tokens);
  if (j["choices"][0]["finish_reason"] == "length") {
    EXPECT_EQ(completion_tokens, 12);
  }
  // Without "model" the base answers (as vLLM); default max_tokens is 16.
  auto d = post(s(), "/v1/completions", json{{"prompt", "How many cars"}, {"temperature", 0}});
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_EQ(d.json_body["choices"][0]["text"], ref.greedy(ref.encode("How many cars"), 16));
}

TEST_F(OpenAIApi, ChatUsesTheTemplate) {
  Reference ref;
  const json messages = json::array({{{"role", "system"}, {"content", "Answer with SQL."}},
                                     {{"role", "user"}, {"content", "宝马在上海有几辆在库？"}}});
  auto r = post(s(), "/v1/chat/completions", json{{"model", "tiny"}, {"messages", messages}, {"max_tokens", 10},
                                                 {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json& j = r.json_body;
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(j["object"], "chat.completion");
  const json& msg = j["choices"][0]["message"];
  EXPECT_EQ(msg["role"], "assistant");
  auto prompt = ref.chat({{"system", "Answer with SQL."}, {"user", "宝马在上海有几辆在库？"}});
  EXPECT_EQ(msg["content"], ref.greedy(prompt, 10));
  EXPECT_EQ(j["usage"]["prompt_tokens"], static_cast<int64_t>(prompt.size()));
  // Content as a list of text parts is the same conversation.
  const json parts = json::array({{{"role", "system"}, {"content", json::array({{{"type", "text"}, {"text", "Answer with SQL."}}})}},
                                  {{"role", "user"}, {"content", "宝马在上海有几辆在库？"}}});
  auto p = post(s(), "/v1/chat/completions", json{{"messages", parts}, {"max_tokens", 10}, {"temperature", 0}});
  EXPECT_EQ(p.json_body["choices"][0]["message"]["content"], msg["content"]);
}

TEST_F(OpenAIApi, StreamingCompletionsMatchTheFullResponse) {
  const json body{{"prompt", "the dealer"}, {"max_tokens", 14}, {"temperature", 0}, {"n", 2}};
  auto full = post(s(), "/v1/completions", body);
  ASSERT_EQ(full.status, 200);
  json streamed = body;
  streamed["stream_options"] = {{"include_usage", true}};
  auto st = post_stream(s(), "/v1/completions", streamed);
  ASSERT_EQ(st.status, 200);
  ASSERT_TRUE(st.done()) << st.raw;
  auto texts = stream_texts(st, 2);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(texts[i], full.json_body["choices"][i]["text"]) << "choice " << i;
  // Every event is "data: <json>\n\n"; the usage chunk comes last, with no choices.
  EXPECT_EQ(st.raw.substr(st.raw.size() - 14), "data: [DONE]\n\n");
  const json& last = st.chunks.back();
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"], full.json_body["usage"]);
  for (size_t k = 0; k + 1 < st.chunks.size(); ++k) {
    EXPECT_EQ(st.chunks[k]["object"], "text_completion");
    EXPECT_EQ(st.chunks[k]["id"], st.chunks[0]["id"]);
  }
  int finishes = 0;
  for (const auto& c : st.chunks)
    for (const auto& ch : c["choices"])
      if (!ch["finish_reason"].is_null()) ++finishes;
  EXPECT_EQ(finishes, 2);
}

TEST_F(OpenAIApi, StreamingChatStartsWithTheRole) {
  const json body{{"messages", json::array({{{"role", "user"}, {"content", "How many cars?"}}})},
                  {"max_tokens", 9},
                  {"temperature", 0}};
  auto full = post(s(), "/v1/chat/completions", body);
  auto st = post_stream(s(), "/v1/chat/completions", body);
  ASSERT_TRUE(st.done());
  ASSERT_GE(st.chunks.size(), 2u);
  EXPECT_EQ(st.chunks[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(st.chunks[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(stream_texts(st, 1)[0], full.json_body["choices"][0]["message"]["content"]);
  const json& end = st.chunks.back()["choices"][0];
  EXPECT_EQ(end["finish_reason"], full.json_body["choices"][0]["finish_reason"]);
  EXPECT_FALSE(st.chunks.back().contains("usage"));  // not asked for
}

TEST_F(OpenAIApi, StopStringsEndTheText) {
  const json base{{"prompt", "SELECT"}, {"max_tokens", 30}, {"temperature", 0}, {"ignore_eos", true}};
  auto free_run = post(s(), "/v1/completions", base).json_body["choices"][0]["text"].get<std::string>();
  ASSERT_GE(free_run.size(), 10u) << free_run;
  const std::string stop = free_run.substr(5, 3);
  json with_stop = base;
  with_stop["stop"] = json::array({stop, "never-appears"});
  auto r = post(s(), "/v1/completions", with_stop);
  const json& choice = r.json_body["choices"][0];
  EXPECT_EQ(choice["text"], free_run.substr(0, free_run.find(stop)));
  EXPECT_EQ(choice["finish_reason"], "stop");
  EXPECT_EQ(choice["stop_reason"], stop);
  // Streamed, the held-back text never includes the stop string.
  auto st = post_stream(s(), "/v1/completions", with_stop);
  EXPECT_EQ(stream_texts(st, 1)[0], choice["text"]);
  with_stop["include_stop_str_in_output"] = true;
  EXPECT_EQ(post(s(), "/v1/completions", with_stop).json_body["choices"][0]["text"],
            free_run.substr(0, free_run.find(stop) + stop.size()));
}

TEST_F(OpenAIApi, SameSeedSameText) {
  json body{{"prompt", "How many"}, {"max_tokens", 16}, {"temperature", 1.0}, {"top_p", 0.95}, {"seed", 1234}, {"n", 2}};
  auto a = post(s(), "/v1/completions", body), b = post(s(), "/v1/completions", body);
  ASSERT_EQ(a.status, 200);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(a.json_body["choices"][i]["text"], b.json_body["choices"][i]["text"]);
  EXPECT_NE(a.json_body["choices"][0]["text"], a.json_body["choices"][1]["text"]);
  body["seed"] = 99;
  EXPECT_NE(post(s(), "/v1/completions", body).json_body["choices"][0]["text"], a.json_body["choices"][0]["text"]);
}

TEST_F(OpenAIApi, LogprobsAreTheModelsLogSoftmax) {
  Reference ref;
  auto r = post(s(), "/v1/completions", json{{"prompt", "cars"}, {"max_tokens", 4}, {"temperature", 0}, {"logprobs", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json& lp = r.json_body["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 4u);
  ASSERT_EQ(lp["token_logprobs"].size(), 4u);
  ASSERT_EQ(lp["text_offset"].size(), 4u);
  EXPECT_EQ(lp["text_offset"][0], 0);
  // The first token's logprob against log_softmax of the model's logits after the prompt.
  torch::NoGradGuard ng;
  auto ids = ref.encode("cars");
  auto logits = ref.loaded.model->forward_full(torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).view({1, -1}))[0][-1];
  auto logp = torch::log_softmax(logits, -1);
  EXPECT_NEAR(lp["token_logprobs"][0].get<double>(), logp.max().item<double>(), 1e-4);
  EXPECT_GE(lp["top_logprobs"][0].size(), 2u);  // the sampled token and the top 2 (may coincide)
  // Chat: logprobs true + top_logprobs 2.
  auto c = post(s(), "/v1/chat/completions",
                json{{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}, {"max_tokens", 3},
                     {"temperature", 0}, {"logprobs", true}, {"top_logprobs", 2}});
  ASSERT_EQ(c.status, 200) << c.body;
  const json& content = c.json_body["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 3u);
  EXPECT_TRUE(content[0]["bytes"].is_array());
  EXPECT_EQ(content[0]["top_logprobs"].size(), 2u);
  EXPECT_GE(content[0]["top_logprobs"][0]["logprob"].get<double>(), content[0]["top_logprobs"][1]["logprob"].get<double>());
}

TEST_F(OpenAIApi, PromptListsTokenIdsAndEcho) {
  Reference ref;
  auto ids = ref.encode("the dealer");
  auto r = post(s(), "/v1/completions",
                json{{"prompt", json::array({"How many cars", "the dealer"})}, {"max_tokens", 5}, {"temperature", 0}, {"n", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json_body["choices"].size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r.json_body["choices"][i]["index"], i);
  EXPECT_EQ(r.json_body["choices"][2]["text"], ref.greedy(ids, 5));
  EXPECT_EQ(r.json_body["usage"]["prompt_tokens"], static_cast<int64_t>(ref.encode("How many cars").size() + ids.size()));
  auto t = post(s(), "/v1/completions", json{{"prompt", ids}, {"max_tokens", 5}, {"temperature", 0}, {"echo", true}});
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(t.json_body["choices"][0]["text"], "the dealer" + ref.greedy(ids, 5));
}

TEST_F(OpenAIApi, ReturnTokenIdsGiveTheExactSampledTokens) {
  // What a trainer needs to score rollouts: the ids, not a re-tokenized text.
  Reference ref;
  const auto ids = ref.encode("How many cars");
  SamplingParams p;
  p.temperature = 1.0;
  p.max_new_tokens = 7;
  p.n = 2;
  p.seed = 3;
  auto want = generate(ref.loaded.model, ref.loaded.tokenizer.get(), {{ids, p}}).completions[0];
  const json body{{"prompt", "How many cars"}, {"max_tokens", 7}, {"temperature", 1.0}, {"n", 2}, {"seed", 3},
                  {"return_token_ids", true}};
  auto r = post(s(), "/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  for (int i = 0; i < 2; ++i) {
    const json& c = r.json_body["choices"][i];
    EXPECT_EQ(c["prompt_token_ids"].get<std::vector<int32_t>>(), ids);
    EXPECT_EQ(c["token_ids"].get<std::vector<int32_t>>(), want[i].tokens) << "choice " << i;
    EXPECT_EQ(c["text"], want[i].text);
  }
  auto st = post_stream(s(), "/v1/completions", body);
  std::vector<std::vector<int32_t>> streamed(2);
  for (const auto& chunk : st.chunks)
    for (const auto& c : chunk["choices"])
      for (const auto& t : c["token_ids"]) streamed[c["index"].get<size_t>()].push_back(t.get<int32_t>());
  for (int i = 0; i < 2; ++i) EXPECT_EQ(streamed[i], want[i].tokens) << "choice " << i;
  auto chat = post(s(), "/v1/chat/completions",
                   json{{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}, {"max_tokens", 3},
                        {"return_token_ids", true}});
  EXPECT_EQ(chat.json_body["prompt_token_ids"].get<std::vector<int32_t>>(), ref.chat({{"user", "hi"}}));
  EXPECT_EQ(chat.json_body["choices"][0]["token_ids"].size(), chat.json_body["usage"]["completion_tokens"].get<size_t>());
}

TEST_F(OpenAIApi, TokenizeAndDetokenize) {
  Reference ref;
  auto r = post(s(), "/tokenize", json{{"model", "tiny"}, {"prompt", "宝马 cars"}, {"return_token_strs", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto ids = ref.encode("宝马 cars");
  EXPECT_EQ(r.json_body["tokens"].get<std::vector<int32_t>>(), ids);
  EXPECT_EQ(r.json_body["count"], static_cast<int64_t>(ids.size()));
  EXPECT_EQ(r.json_body["max_model_len"], 256);
  EXPECT_EQ(r.json_body["token_strs"].size(), ids.size());
  auto d = post(s(), "/detokenize", json{{"tokens", ids}});
  EXPECT_EQ(d.json_body["prompt"], "宝马 cars");
  auto m = post(s(), "/tokenize", json{{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}});
  EXPECT_EQ(m.json_body["tokens"].get<std::vector<int32_t>>(), ref.chat({{"user", "hi"}}));
  EXPECT_TRUE(post(s(), "/tokenize", json{{"prompt", "x"}}).json_body["token_strs"].is_null());
  EXPECT_EQ(post(s(), "/detokenize", json{{"tokens", json::array({999999})}}).status, 400);
  EXPECT_EQ(post(s(), "/tokenize", json{{"model", "nope"}, {"prompt", "x"}}).status, 404);
}

TEST_F(OpenAIApi, RequestsRepeatingAPromptReuseItsPrefixAndAnswerAsAlone) {
  Reference ref;
  const std::string label = "{model_name=\"tiny\"}";
  const std::string system = "You answer questions about the cars in stock, brand by brand, store by store. ";
  ASSERT_GE(ref.encode(system).size(), 20u);
  const double hits0 = metric(get(s(), "/metrics").body, "vllm:prefix_cache_hits_total" + label);
  for (const std::string question : {"How many BMW cars", "Which store sells Audi"}) {
    auto r = post(s(), "/v1/completions", json{{"prompt", system + question}, {"max_tokens", 8}, {"temperature", 0}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json_body["choices"][0]["text"], ref.greedy(ref.encode(system + question), 8)) << question;
  }
  const std::string m = get(s(), "/metrics").body;
  // The second request's opening came from the first one's (at least the system prompt).
  EXPECT_GE(metric(m, "vllm:prefix_cache_hits_total" + label) - hits0, ref.encode(system).size() - 1.0);
  EXPECT_GE(metric(m, "vllm:prefix_cache_queries_total" + label), metric(m, "vllm:prefix_cache_hits_total" + label));
}

TEST_F(OpenAIApi, MetricsCountTokensAndLatencies) {
  const std::string before = get(s(), "/metrics").body;
  const std::string label = "{model_name=\"tiny\"}";
  const double prompt0 = metric(before, "vllm:prompt_tokens_total" + label);
  const double gen0 = metric(before, "vllm:generation_tokens_total" + label);
  const double ttft0 = metric(before, "vllm:time_to_first_token_seconds_count" + label);
  int64_t prompt = 0, generated = 0;
  for (int i = 0; i < 3; ++i) {
    auto r = post(s(), "/v1/completions", json{{"prompt", "cars " + std::to_string(i)}, {"max_tokens", 5 + i}});
    prompt += r.json_body["usage"]["prompt_tokens"].get<int64_t>();
    generated += r.json_body["usage"]["completion_tokens"].get<int64_t>();
  }
  auto m = get(s(), "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(metric(m.body, "vllm:prompt_tokens_total" + label), prompt0 + prompt);
  EXPECT_EQ(metric(m.body, "vllm:generation_tokens_total" + label), gen0 + generated);
  EXPECT_EQ(metric(m.body, "vllm:time_to_first_token_seconds_count" + label), ttft0 + 3);
  // Gauges are sampled by the engine after each step, a moment after the last response.
  std::string gauges = m.body;
  for (int i = 0; i < 500 && metric(gauges, "vllm:num_requests_running" + label) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    gauges = get(s(), "/metrics").body;
  }
  EXPECT_EQ(metric(gauges, "vllm:num_requests_running" + label), 0);
  EXPECT_EQ(metric(gauges, "vllm:num_requests_waiting" + label), 0);
  for (const char* name : {"# TYPE vllm:time_per_output_token_seconds histogram", "# TYPE vllm:kv_cache_usage_perc gauge",
                           "vllm:e2e_request_latency_seconds_bucket{model_name=\"tiny\",le=\"+Inf\"}",
                           "vllm:request_success_total{model_name=\"tiny\",finished_reason=\"length\"}"})
    EXPECT_NE(m.body.find(name), std::string::npos) << name;
}

void expect_error(const Reply& r, int status, const std::string& text, const std::string& param = "") {
  EXPECT_EQ(r.status, status) << r.body;
  ASSERT_TRUE(r.json_body.is_object()) << r.body;
  const json& e = r.json_body["error"];
  EXPECT_EQ(e["code"], status) << r.body;
  EXPECT_TRUE(e["type"].is_string());
  EXPECT_NE(e["message"].get<std::string>().find(text), std::string::npos) << e["message"];
  if (!param.empty()) {
    EXPECT_EQ(e["param"], param) << r.body;
  }
}

TEST_F(OpenAIApi, ErrorsHaveTheirStatusAndTheServerCarriesOn) {
  const std::string c = "/v1/completions";
  expect_error(post(s(), c, std::string("{\"prompt\": ")), 400, "not valid JSON");
  expect_error(post(s(), c, std::string("[1, 2]")), 400, "JSON object");
  expect_error(post(s(), c, json{{"max_tokens", 3}}), 400, "'prompt' is required", "prompt");
  expect_error(post(s(), c, json{{"prompt", "x"}, {"temperature", "hot"}}), 400, "must be a number", "temperature");
  expect_error(post(s(), c, json{{"prompt", "x"}, {"temperature", -1}}), 400, "non-negative", "temperature");
  expect_error(post(s(), c, json{{"prompt", "x"}, {"top_p", 1.5}}), 400, "top_p", "top_p");
  expect_error(post(s(), c, json{{"prompt", "x"}, {"n", 0}}), 400, "n must be at least 1", "n");
  expect_error(post(s(), c, json{{"prompt", "x"}, {"max_tokens", 0}}), 400, "at least 1", "max_tokens");
  expect_error(post(s(), c, json{{"prompt", "x"}, {"logprobs", 21}}), 400, "max allowed: 20", "logprobs");
  expect_error(post(s(), c, json{{"prompt", "x"}, {"stop", 3}}), 400, "'stop'", "stop");
  expect_error(post(s(), c, json{{"prompt", json::array({1, 2, 100000})}}), 400, "out of vocabulary", "prompt");
  expect_error(post(s(), c, json{{"prompt", ""}}), 400, "Prompt cannot be empty", "prompt");
  expect_error(post(s(), c, json{{"prompt", "x"}, {"presence_penalty", 0.5}}), 400, "not supported", "presence_penalty");
  expect_error(post(s(), c, json{{"prompt", "x"}, {"stream_options", {{"include_usage", true}}}}), 400,
               "stream=True", "stream_options");
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += "宝马 cars ";
  expect_error(post(s(), c, json{{"prompt", long_prompt}}), 400, "maximum context length is 256 tokens");
  expect_error(post(s(), c, json{{"prompt", "x"}, {"max_tokens", 256}}), 400, "'max_tokens' or 'max_completion_tokens' is too large");
  expect_error(post(s(), c, json{{"model", "gpt-4"}, {"prompt", "x"}}), 404, "The model `gpt-4` does not exist.", "model");
  expect_error(post(s(), "/v1/chat/completions", json{{"messages", json::array()}}), 400, "non-empty", "messages");
  expect_error(post(s(), "/v1/chat/completions",
                    json{{"messages", json::array({{{"role", "tool"}, {"content", "x"}}})}}),
               400, "role 'tool'", "messages");
  expect_error(post(s(), "/v1/chat/completions",
                    json{{"messages", json::array({{{"role", "user"}, {"content", "x"}}})}, {"top_logprobs", 2}}),
               400, "`logprobs` must be set to true", "top_logprobs");
  expect_error(get(s(), "/v1/nothing-here"), 404, "Not Found");
  // A deeply nested body is refused without being walked recursively.
  const std::string deep = "{\"prompt\": " + std::string(200000, '[') + std::string(200000, ']') + "}";
  expect_error(post(s(), c, deep), 400, "token ids", "prompt");
  expect_error(post(s(), "/detokenize", "{\"tokens\": [" + std::string(200000, '[') + std::string(200000, ']') + "]}"),
               400, "'tokens'", "tokens");
  expect_error(post(s(), c, std::string(9u << 20, ' ')), 413, "--max-body-bytes");
  // An error while streaming is refused before the stream starts.
  auto st = post_stream(s(), c, json{{"prompt", "x"}, {"top_k", -5}});
  EXPECT_EQ(st.status, 400);
  // Still serving.
  EXPECT_EQ(get(s(), "/health").status, 200);
  EXPECT_EQ(post(s(), c, json{{"prompt", "cars"}, {"max_tokens", 2}}).status, 200);
}

TEST(MaxTokensCap, LargerRequestsAreRefusedAndDefaultsCapped) {
  auto o = options_for(tiny());
  o.max_tokens_cap = 8;
  auto server = start(o);
  expect_error(post(*server, "/v1/completions", json{{"prompt", "x"}, {"max_tokens", 9}}), 400, "--max-tokens-cap",
               "max_tokens");
  auto ok = post(*server, "/v1/completions", json{{"prompt", "x"}, {"max_tokens", 8}, {"ignore_eos", true}});
  EXPECT_EQ(ok.json_body["usage"]["completion_tokens"], 8);
  // Chat's default (the rest of the context) is capped too.
  auto chat = post(*server, "/v1/chat/completions",
                   json{{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}, {"ignore_eos", true}});
  ASSERT_EQ(chat.status, 200) << chat.body;
  EXPECT_EQ(chat.json_body["usage"]["completion_tokens"], 8);
  EXPECT_EQ(chat.json_body["choices"][0]["finish_reason"], "length");
}

// A body sent with Transfer-Encoding: chunked, in 4 KiB pieces, as streaming HTTP clients send one.
Reply post_chunked(const Server& s, const std::string& path, const std::string& body) {
  auto c = client(s);
  return reply_of(c.Post(
      path,
      [&body](size_t offset, httplib::DataSink& sink) {
        if (offset < body.size()) return sink.write(body.data() + offset, std::min<size_t>(4096, body.size() - offset));
        sink.done();
        return true;
      },
      "application/json"));
}

// The soak found it (docs/reliability.md, "Server soak"): httplib limits only Content-Length
// bodies, so a chunked one of any size was buffered whole and then tokenized.
TEST(MaxBodyBytes, ChunkedBodiesAreLimitedToo) {
  auto o = options_for(tiny());
  o.max_body_bytes = 64 << 10;
  auto server = start(o);
  const std::string big = json{{"prompt", std::string(256 << 10, 'x')}, {"max_tokens", 2}}.dump();
  expect_error(post_chunked(*server, "/v1/completions", big), 413, "exceeds 65536 bytes (--max-body-bytes)");
  expect_error(post(*server, "/v1/completions", big), 413, "--max-body-bytes");
  expect_error(post_chunked(*server, "/no/such/route", big), 413, "--max-body-bytes");
  expect_error(post_chunked(*server, "/no/such/route", "{}"), 404, "Not Found");
  // Within the limit a chunked body is served as any other.
  const json small = {{"prompt", "How many cars"}, {"max_tokens", 3}, {"temperature", 0}};
  const Reply chunked = post_chunked(*server, "/v1/completions", small.dump());
  ASSERT_EQ(chunked.status, 200) << chunked.body;
  EXPECT_EQ(chunked.json_body["choices"][0]["text"], post(*server, "/v1/completions", small).json_body["choices"][0]["text"]);
  EXPECT_EQ(post_chunked(*server, "/tokenize", R"({"prompt": "cars"})").status, 200);
}

TEST(ApiKey, V1RoutesNeedTheBearerToken) {
  auto o = options_for(tiny());
  o.api_key = "sekret";
  auto server = start(o);
  auto no_key = get(*server, "/v1/models");
  EXPECT_EQ(no_key.status, 401);
  EXPECT_EQ(no_key.json_body, json({{"error", "Unauthorized"}}));
  EXPECT_EQ(get(*server, "/v1/models", {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(post(*server, "/v1/completions", json{{"prompt", "x"}}).status, 401);
  EXPECT_EQ(get(*server, "/v1/models", {{"Authorization", "Bearer sekret"}}).status, 200);
  EXPECT_EQ(post(*server, "/v1/completions", json{{"prompt", "x"}, {"max_tokens", 2}}, {{"Authorization", "Bearer sekret"}})
                .status,
            200);
  EXPECT_EQ(get(*server, "/health").status, 200);
  EXPECT_EQ(get(*server, "/metrics").status, 200);
}

}  // namespace
}  // namespace lathe::serve::testing
