// A scripted stand-in for an OpenAI-compatible server (vLLM, `lathe serve`) on a free
// loopback port, for tests of clients: every request is recorded, and a handler the test
// writes decides each reply (canned completions, errors, delays).
#pragma once
#include <httplib.h>

#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace lathe::testing {

struct FakeRequest {
  std::string method, path;
  nlohmann::json body;        // parsed JSON body (null for GET or a body that is not JSON)
  std::string authorization;  // the Authorization header, "" when absent
};

struct FakeReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

class FakeOpenAiServer {
 public:
  using Handler = std::function<FakeReply(const FakeRequest&)>;

  // Serves every GET and POST path with `handler`, on a thread of its own.
  explicit FakeOpenAiServer(Handler handler);
  ~FakeOpenAiServer();
  FakeOpenAiServer(const FakeOpenAiServer&) = delete;
  FakeOpenAiServer& operator=(const FakeOpenAiServer&) = delete;

  int port() const { return port_; }
  std::string endpoint() const;  // "http://127.0.0.1:PORT/v1"
  std::vector<FakeRequest> requests() const;

 private:
  httplib::Server server_;
  Handler handler_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<FakeRequest> requests_;
};

// A chat.completion body with one assistant message per content (choice i = contents[i]).
std::string fake_chat_reply(const std::vector<std::string>& contents, int prompt_tokens = 10,
                            int completion_tokens = 5);
// The OpenAI error envelope with `status` as its code.
FakeReply fake_error(int status, const std::string& message);

}  // namespace lathe::testing
