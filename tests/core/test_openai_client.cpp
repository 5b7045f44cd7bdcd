// The OpenAI-compatible client against a scripted server: request bodies as vLLM reads them,
// replies parsed (choices in index order, logprobs, usage), and every failure a one-line
// error naming the method, the URL and the status.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/openai_client.h"
#include "tests/support/fake_openai_server.h"

namespace lathe {
namespace {

using testing::FakeOpenAiServer;
using testing::FakeReply;
using testing::FakeRequest;

OpenAiClient client_for(const FakeOpenAiServer& server, const std::string& key = "") {
  OpenAiClientOptions options;
  options.endpoint = server.endpoint();
  options.api_key = key;
  return OpenAiClient(options);
}

std::string error_of(const std::function<void()>& call, int* status = nullptr) {
  try {
    call();
  } catch (const OpenAiError& e) {
    if (status) *status = e.status();
    return e.what();
  }
  return "(no error)";
}

TEST(OpenAiClient, ChatSendsTheRequestAndParsesTheReply) {
  FakeOpenAiServer server([](const FakeRequest&) {
    return FakeReply{200, testing::fake_chat_reply({"<answer>\nSELECT 1\n</answer>"}, 42, 7)};
  });
  ChatRequest request;
  request.model = "inventory";
  request.messages = {{"system", "sys"}, {"user", "宝马有几辆？"}};
  request.max_tokens = 64;
  request.stop = {"</answer>"};
  request.seed = 5;
  request.extra = {{"top_k", 20}};
  const ChatResponse reply = client_for(server, "secret").chat(request);
  ASSERT_EQ(reply.choices.size(), 1u);
  EXPECT_EQ(reply.choices[0].content, "<answer>\nSELECT 1\n</answer>");
  EXPECT_EQ(reply.choices[0].finish_reason, "stop");
  EXPECT_EQ(reply.usage.prompt_tokens, 42);
  EXPECT_EQ(reply.usage.completion_tokens, 7);
  EXPECT_EQ(reply.usage.total_tokens, 49);

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/v1/chat/completions");
  EXPECT_EQ(requests[0].authorization, "Bearer secret");
  const auto& body = requests[0].body;
  EXPECT_EQ(body["model"], "inventory");
  EXPECT_EQ(body["messages"][1]["role"], "user");
  EXPECT_EQ(body["messages"][1]["content"], "宝马有几辆？");
  EXPECT_EQ(body["max_tokens"], 64);
  EXPECT_EQ(body["temperature"], 0.0);
  EXPECT_EQ(body["stop"], nlohmann::json::array({"</answer>"}));
  EXPECT_EQ(body["seed"], 5);
  EXPECT_EQ(body["top_k"], 20);
  EXPECT_FALSE(body.contains("logprobs"));
}

TEST(OpenAiClient, EndpointWithOrWithoutV1NamesTheSameServer) {
  FakeOpenAiServer server([](const FakeRequest&) { return FakeReply{200, R"({"object":"list","data":[]})"}; });
  const std::string root = "http://127.0.0.1:" + std::to_string(server.port());
  for (const std::string& endpoint : {root, root + "/", root + "/v1", root + "/v1/"}) {
    OpenAiClientOptions options;
    options.endpoint = endpoint;
    OpenAiClient client(options);
    EXPECT_EQ(client.url("/v1/models"), root + "/v1/models") << endpoint;
    EXPECT_TRUE(client.list_models().empty());
    EXPECT_TRUE(client.healthy());
  }
  for (const auto& r : server.requests()) EXPECT_TRUE(r.path == "/v1/models" || r.path == "/health") << r.path;
  // A deployment behind a path prefix keeps it.
  OpenAiClientOptions prefixed;
  prefixed.endpoint = root + "/llm/v1";
  EXPECT_EQ(OpenAiClient(prefixed).url("/health"), root + "/llm/health");
}

TEST(OpenAiClient, CompletionsWithNSamplesAndLogprobs) {
  // Replies deliberately out of order: the client returns them sorted by index.
  FakeOpenAiServer server([](const FakeRequest& r) {
    nlohmann::json choices = nlohmann::json::array();
    const int n = r.body["n"];
    const int prompts = static_cast<int>(r.body["prompt"].size());
    for (int i = prompts * n - 1; i >= 0; --i) {
      choices.push_back({{"index", i},
                         {"text", "t" + std::to_string(i)},
                         {"finish_reason", i % 2 ? "length" : "stop"},
                         {"logprobs",
                          {{"tokens", {"a", "b"}},
                           {"token_logprobs", {-0.5, -1.25 * i}},
                           {"top_logprobs", {{{"a", -0.5}}, {{"b", -1.0}}}},
                           {"text_offset", {0, 1}}}}});
    }
    return FakeReply{200, nlohmann::json{{"id", "cmpl-1"},
                                         {"object", "text_completion"},
                                         {"model", r.body["model"]},
                                         {"choices", choices},
                                         {"usage", {{"prompt_tokens", 8}, {"completion_tokens", 12}, {"total_tokens", 20}}}}
                              .dump()};
  });
  CompletionRequest request;
  request.model = "policy";
  request.prompts = {"p0", "p1"};
  request.n = 3;
  request.max_tokens = 32;
  request.temperature = 1.0;
  request.top_k = 50;
  request.logprobs = 1;
  request.seed = 7;
  const CompletionResponse reply = client_for(server).complete(request);
  ASSERT_EQ(reply.choices.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(reply.choices[i].index, i);
    EXPECT_EQ(reply.choices[i].text, "t" + std::to_string(i));
    ASSERT_EQ(reply.choices[i].token_logprobs.size(), 2u);
    EXPECT_DOUBLE_EQ(*reply.choices[i].token_logprobs[1], -1.25 * i);
    EXPECT_EQ(reply.choices[i].tokens[0], "a");
    EXPECT_EQ(reply.choices[i].top_logprobs[1]["b"], -1.0);
  }
  EXPECT_EQ(reply.choices[1].finish_reason, "length");
  EXPECT_EQ(reply.usage.total_tokens, 20);
  const auto body = server.requests().at(0).body;
  EXPECT_EQ(server.requests().at(0).path, "/v1/completions");
  EXPECT_EQ(body["prompt"], nlohmann::json::array({"p0", "p1"}));
  EXPECT_EQ(body["n"], 3);
  EXPECT_EQ(body["logprobs"], 1);
  EXPECT_EQ(body["top_k"], 50);
  EXPECT_EQ(body["seed"], 7);
  EXPECT_EQ(body["max_tokens"], 32);
}

TEST(OpenAiClient, CompletionBodiesForTokenIdsAndOnePrompt) {
  CompletionRequest ids;
  ids.model = "m";
  ids.prompt_token_ids = {{1, 2, 3}};
  EXPECT_EQ(OpenAiClient::completion_body(ids)["prompt"], nlohmann::json::array({1, 2, 3}));
  EXPECT_FALSE(OpenAiClient::completion_body(ids).contains("logprobs"));
  EXPECT_FALSE(OpenAiClient::completion_body(ids).contains("top_k"));
  ids.prompt_token_ids.push_back({4});
  EXPECT_EQ(OpenAiClient::completion_body(ids)["prompt"], nlohmann::json::parse("[[1,2,3],[4]]"));
  CompletionRequest one;
  one.prompts = {"hello"};
  one.logprobs = 0;
  EXPECT_EQ(OpenAiClient::completion_body(one)["prompt"], "hello");
  EXPECT_EQ(OpenAiClient::completion_body(one)["logprobs"], 0);
  CompletionRequest both = one;
  both.prompt_token_ids = {{1}};
  EXPECT_THROW(OpenAiClient::completion_body(both), Error);
}

TEST(OpenAiClient, WrongNumberOfChoicesIsAnError) {
  FakeOpenAiServer server([](const FakeRequest&) {
    return FakeReply{200, R"({"choices":[{"index":0,"text":"x","finish_reason":"stop"}]})"};
  });
  CompletionRequest request;
  request.prompts = {"p"};
  request.n = 4;
  EXPECT_NE(error_of([&] { client_for(server).complete(request); }).find("expected 4 choices"), std::string::npos);
}

TEST(OpenAiClient, HttpErrorsNameTheEndpointStatusAndMessage) {
  FakeOpenAiServer server([](const FakeRequest& r) {
    if (r.path == "/v1/load_lora_adapter") return FakeReply{400, "The lora adapter 'x' has already been loaded.", "text/plain"};
    if (r.path == "/v1/models") return FakeReply{401, R"({"error": "Unauthorized"})"};
    return testing::fake_error(404, "The model `nope` does not exist.");
  });
  const OpenAiClient client = client_for(server);
  ChatRequest chat;
  chat.model = "nope";
  chat.messages = {{"user", "q"}};
  int status = -1;
  const std::string e = error_of([&] { client.chat(chat); }, &status);
  EXPECT_EQ(status, 404);
  EXPECT_EQ(e, "POST " + server.endpoint() + "/chat/completions: HTTP 404: The model `nope` does not exist.");
  const std::string e2 = error_of([&] { client.load_lora_adapter("x", "/a"); }, &status);
  EXPECT_EQ(status, 400);
  EXPECT_NE(e2.find("/v1/load_lora_adapter: HTTP 400: The lora adapter 'x' has already been loaded."), std::string::npos);
  EXPECT_NE(error_of([&] { client.list_models(); }, &status).find("GET "), std::string::npos);
  EXPECT_EQ(status, 401);
  EXPECT_NE(error_of([&] { client.list_models(); }).find("HTTP 401: Unauthorized"), std::string::npos);
}

TEST(OpenAiClient, TransportFailuresAreNamed) {
  int port = 0;
  {
    FakeOpenAiServer closed([](const FakeRequest&) { return FakeReply{}; });
    port = closed.port();
  }  // nothing listens on `port` any more
  OpenAiClientOptions options;
  options.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/v1";
  options.connect_timeout_seconds = 2;
  int status = -1;
  const std::string e = error_of([&] { OpenAiClient(options).list_models(); }, &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(e.find("GET http://127.0.0.1:" + std::to_string(port) + "/v1/models: cannot connect"), std::string::npos) << e;
  EXPECT_FALSE(OpenAiClient(options).healthy(0.5));

  FakeOpenAiServer slow([](const FakeRequest&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    return FakeReply{200, testing::fake_chat_reply({"late"})};
  });
  OpenAiClientOptions impatient;
  impatient.endpoint = slow.endpoint();
  impatient.read_timeout_seconds = 0.2;
  ChatRequest chat;
  chat.messages = {{"user", "q"}};
  EXPECT_NE(error_of([&] { OpenAiClient(impatient).chat(chat); }).find("no reply within 0.2 s"), std::string::npos);

  FakeOpenAiServer garbage([](const FakeRequest&) { return FakeReply{200, "<html>proxy error</html>", "text/html"}; });
  EXPECT_NE(error_of([&] { client_for(garbage).chat(chat); }).find("reply is not JSON: <html>proxy error</html>"),
            std::string::npos);

  for (const char* bad : {"127.0.0.1:8000", "ftp://host/v1", "http://"}) {
    OpenAiClientOptions o;
    o.endpoint = bad;
    EXPECT_THROW(OpenAiClient{o}, Error) << bad;
  }
}

TEST(OpenAiClient, AdaptersAndModels) {
  FakeOpenAiServer server([](const FakeRequest& r) {
    if (r.path == "/v1/models") {
      return FakeReply{200, R"({"object":"list","data":[
        {"id":"base","object":"model","root":"/m","parent":null,"max_model_len":2048},
        {"id":"sft","object":"model","root":"/a/sft","parent":"base","max_model_len":null}]})"};
    }
    return FakeReply{200, "Success: LoRA adapter 'sft' added successfully.", "text/plain"};
  });
  const OpenAiClient client = client_for(server);
  const auto models = client.list_models();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].id, "base");
  EXPECT_FALSE(models[0].parent.has_value());
  EXPECT_EQ(models[0].max_model_len, 2048);
  EXPECT_EQ(models[1].parent, "base");
  EXPECT_EQ(models[1].root, "/a/sft");
  EXPECT_FALSE(models[1].max_model_len.has_value());
  client.load_lora_adapter("sft", "/a/sft", true);
  client.unload_lora_adapter("sft");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].path, "/v1/load_lora_adapter");
  EXPECT_EQ(requests[1].body, nlohmann::json({{"lora_name", "sft"}, {"lora_path", "/a/sft"}, {"load_inplace", true}}));
  EXPECT_EQ(requests[2].path, "/v1/unload_lora_adapter");
  EXPECT_EQ(requests[2].body, nlohmann::json({{"lora_name", "sft"}}));
}

}  // namespace
}  // namespace lathe
