// The server under pressure: a full queue answers 503 while the running request carries on;
// a streaming client that hangs up cancels its request (it leaves the batch as "abort" long
// before its max_tokens); shutdown lets running requests finish (or cancels them after the
// grace period) and completes their streams; bad requests sent among good ones disturb none.
#include <thread>

#include "tests/serve/serve_test_support.h"

namespace lathe::serve::testing {
namespace {

const std::string kLabel = "{model_name=\"tiny\"}";

// Polls /metrics until `name` reaches `value` (or 10 s pass).
bool wait_for_metric(const Server& s, const std::string& name, double value) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (metric(get(s, "/metrics").body, name) == value) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// About a second of decoding on the tiny model: long enough to act while it runs.
json long_request() {
  return {{"prompt", "the dealer"}, {"max_tokens", 600}, {"temperature", 0}, {"ignore_eos", true}};
}

ServerOptions long_runs() {
  auto o = options_for(tiny());
  o.scheduler.max_model_len = 4096;
  return o;
}

TEST(LoadControl, FullQueueAnswers503) {
  auto o = long_runs();
  o.scheduler.max_num_seqs = 1;
  o.scheduler.max_waiting = 1;
  auto server = start(o);
  Stream first;
  std::thread running([&] { first = post_stream(*server, "/v1/completions", long_request()); });
  ASSERT_TRUE(wait_for_metric(*server, "vllm:num_requests_running" + kLabel, 1));
  Reply second;
  std::thread queued([&] { second = post(*server, "/v1/completions", json{{"prompt", "cars"}, {"max_tokens", 3}}); });
  ASSERT_TRUE(wait_for_metric(*server, "vllm:num_requests_waiting" + kLabel, 1));
  auto third = post(*server, "/v1/completions", json{{"prompt", "cars"}, {"max_tokens", 3}});
  EXPECT_EQ(third.status, 503);
  EXPECT_EQ(third.json_body["error"]["code"], 503);
  EXPECT_NE(third.body.find("--max-waiting-requests"), std::string::npos);
  running.join();
  queued.join();
  EXPECT_TRUE(first.done());
  EXPECT_EQ(second.status, 200);
  // More rows than the batch holds is a 400, not a wait forever.
  EXPECT_EQ(post(*server, "/v1/completions", json{{"prompt", "x"}, {"n", 2}}).status, 400);
}

TEST(LoadControl, StreamingClientThatHangsUpCancelsItsRequest) {
  auto server = start(long_runs());
  const std::string aborted = "vllm:request_success_total{model_name=\"tiny\",finished_reason=\"abort\"}";
  ASSERT_EQ(metric(get(*server, "/metrics").body, aborted), 0);
  auto st = post_stream(*server, "/v1/completions", long_request(), /*stop_after=*/3);
  EXPECT_EQ(st.data.size(), 3u);
  ASSERT_TRUE(wait_for_metric(*server, aborted, 1));
  EXPECT_TRUE(wait_for_metric(*server, "vllm:num_requests_running" + kLabel, 0));
  const std::string m = get(*server, "/metrics").body;
  // Far fewer than the 600 tokens asked for were generated.
  EXPECT_LT(metric(m, "vllm:generation_tokens_total" + kLabel), 300);
  EXPECT_EQ(post(*server, "/v1/completions", json{{"prompt", "cars"}, {"max_tokens", 3}}).status, 200);
}

TEST(LoadControl, ShutdownFinishesRunningStreams) {
  auto server = start(long_runs());
  Stream st;
  std::thread client([&] { st = post_stream(*server, "/v1/completions", long_request()); });
  ASSERT_TRUE(wait_for_metric(*server, "vllm:num_requests_running" + kLabel, 1));
  server->shutdown(/*grace_seconds=*/20);
  client.join();
  ASSERT_TRUE(st.done()) << st.raw;
  EXPECT_EQ(stream_texts(st, 1)[0].empty(), false);
  EXPECT_EQ(st.chunks.back()["choices"][0]["finish_reason"], "length");
  // The listener is closed afterwards.
  EXPECT_EQ(get(*server, "/health").status, 0);
}

TEST(LoadControl, ShutdownAfterGraceCancelsButStillEndsTheStream) {
  auto server = start(long_runs());
  Stream st;
  std::thread client([&] { st = post_stream(*server, "/v1/completions", long_request()); });
  ASSERT_TRUE(wait_for_metric(*server, "vllm:num_requests_running" + kLabel, 1));
  server->shutdown(/*grace_seconds=*/0);
  client.join();
  ASSERT_TRUE(st.done()) << st.raw;
  EXPECT_EQ(st.chunks.back()["choices"][0]["finish_reason"], "abort");
}

TEST(LoadControl, BadRequestsAmongGoodOnesDisturbNone) {
  Reference ref;
  const std::string want = ref.greedy(ref.encode("How many cars"), 20);
  auto server = start(options_for(tiny()));
  std::vector<std::thread> clients;
  std::vector<Reply> good(6), bad(6);
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&, i] {
      good[i] = post(*server, "/v1/completions", json{{"prompt", "How many cars"}, {"max_tokens", 20}, {"temperature", 0}});
    });
    clients.emplace_back([&, i] {
      const std::vector<std::string> bodies{"{not json", R"({"prompt": 5})", R"({"prompt": "x", "n": -1})",
                                            R"({"prompt": "x", "model": "nope"})", R"({"prompt": "x", "max_tokens": 9999})",
                                            R"({"prompt": [[1, 2], "mixed"]})"};
      bad[i] = post(*server, "/v1/completions", bodies[i]);
    });
  }
  for (auto& c : clients) c.join();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(good[i].status, 200);
    EXPECT_EQ(good[i].json_body["choices"][0]["text"], want) << i;
    EXPECT_EQ(bad[i].status, i == 3 ? 404 : 400) << bad[i].body;
  }
}

}  // namespace
}  // namespace lathe::serve::testing
