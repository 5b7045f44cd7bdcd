#include "tests/support/fake_openai_server.h"

#include <chrono>
#include <stdexcept>

namespace lathe::testing {

FakeOpenAiServer::FakeOpenAiServer(Handler handler) : handler_(std::move(handler)) {
  auto serve = [this](const httplib::Request& req, httplib::Response& res) {
    FakeRequest r;
    r.method = req.method;
    r.path = req.path;
    r.authorization = req.get_header_value("Authorization");
    if (!req.body.empty()) r.body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(r);
    }
    const FakeReply reply = handler_(r);
    res.status = reply.status;
    res.set_content(reply.body, reply.content_type.c_str());
  };
  server_.Get(".*", serve);
  server_.Post(".*", serve);
  port_ = server_.bind_to_any_port("127.0.0.1");
  if (port_ <= 0) throw std::runtime_error("fake server: cannot bind a loopback port");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  for (int i = 0; i < 5000 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

FakeOpenAiServer::~FakeOpenAiServer() {
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

std::string FakeOpenAiServer::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

std::vector<FakeRequest> FakeOpenAiServer::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

std::string fake_chat_reply(const std::vector<std::string>& contents, int prompt_tokens, int completion_tokens) {
  nlohmann::json choices = nlohmann::json::array();
  for (size_t i = 0; i < contents.size(); ++i) {
    choices.push_back({{"index", i},
                       {"message", {{"role", "assistant"}, {"content", contents[i]}}},
                       {"finish_reason", "stop"},
                       {"logprobs", nullptr}});
  }
  return nlohmann::json{{"id", "chatcmpl-fake"},
                        {"object", "chat.completion"},
                        {"created", 0},
                        {"model", "fake"},
                        {"choices", choices},
                        {"usage",
                         {{"prompt_tokens", prompt_tokens},
                          {"completion_tokens", completion_tokens},
                          {"total_tokens", prompt_tokens + completion_tokens}}}}
      .dump();
}

FakeReply fake_error(int status, const std::string& message) {
  const char* type = status == 404 ? "NotFoundError" : status >= 500 ? "InternalServerError" : "BadRequestError";
  return {status, nlohmann::json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}}}}.dump()};
}

}  // namespace lathe::testing
