// A client for the OpenAI-compatible HTTP API that vLLM and `lathe serve` expose
// (../shared/docs/INTEROP.md): chat completions, completions with n samples and optional
// logprobs, the model list, runtime LoRA adapter loading, /health. The SQL agent asks its
// questions through it; the GRPO trainer samples rollouts and pushes adapters with it.
//
// The endpoint is a base URL as OpenAI SDKs take it: "http://127.0.0.1:8000" or
// "http://127.0.0.1:8000/v1" name the same server (a trailing /v1 is the API prefix; /health
// and /v1/… are resolved against what precedes it). Every call opens its own connection, so
// one client may be shared by threads. Failures are OpenAiError, one line naming the method,
// the URL and the HTTP status (or the transport failure) with the server's error message.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace lathe {

class OpenAiError : public Error {
 public:
  OpenAiError(const std::string& message, int status) : Error(message), status_(status) {}
  // The HTTP status; 0 when no response came (connection refused, timeout, bad reply).
  int status() const { return status_; }

 private:
  int status_;
};

struct OpenAiClientOptions {
  std::string endpoint = "http://127.0.0.1:8000";
  std::string api_key;                 // sent as "Authorization: Bearer KEY" when non-empty
  double connect_timeout_seconds = 10;
  double read_timeout_seconds = 600;   // a whole non-streamed completion must arrive within it
};

struct ApiMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

struct TokenUsage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t total_tokens = 0;
};

struct ChatRequest {
  std::string model;
  std::vector<ApiMessage> messages;
  int max_tokens = 512;
  double temperature = 0;     // greedy: the agent wants the most likely query
  double top_p = 1;
  int n = 1;
  std::vector<std::string> stop;
  std::optional<uint64_t> seed;
  std::optional<int> top_logprobs;  // set = logprobs: true with this many alternatives
  nlohmann::json extra = nlohmann::json::object();  // merged into the body (e.g. top_k)
};

struct ChatChoice {
  int index = 0;
  std::string content;
  std::string finish_reason;  // stop | length | …
  nlohmann::json logprobs;    // the server's choice.logprobs (null unless asked)
};

struct ChatResponse {
  std::string id, model;
  std::vector<ChatChoice> choices;
  TokenUsage usage;
};

struct CompletionRequest {
  std::string model;
  // Exactly one of prompts (each a string) and prompt_token_ids (each a list of ids).
  std::vector<std::string> prompts;
  std::vector<std::vector<int64_t>> prompt_token_ids;
  int max_tokens = 16;
  double temperature = 1;
  double top_p = 1;
  int top_k = -1;             // vLLM extra; -1 = off
  int n = 1;                  // samples per prompt
  std::vector<std::string> stop;
  std::optional<uint64_t> seed;
  std::optional<int> logprobs;  // top alternatives per token; 0 = only the sampled token's
  bool echo = false;
  nlohmann::json extra = nlohmann::json::object();
};

struct CompletionChoice {
  int index = 0;  // prompt p, sample s → index p * n + s (vLLM's order)
  std::string text;
  std::string finish_reason;
  // Filled when logprobs was requested: one entry per generated token.
  std::vector<std::string> tokens;
  std::vector<std::optional<double>> token_logprobs;  // null for an echoed first token
  std::vector<nlohmann::json> top_logprobs;           // {token: logprob} objects, or null
  // The generated ids when the request set extra "return_token_ids" (vLLM and lathe serve
  // answer with them); empty otherwise.
  std::vector<int64_t> token_ids;
};

struct CompletionResponse {
  std::string id, model;
  std::vector<CompletionChoice> choices;  // sorted by index
  TokenUsage usage;
};

struct ModelCard {
  std::string id;
  std::string root;                     // model or adapter path
  std::optional<std::string> parent;    // the base's name for an adapter
  std::optional<int64_t> max_model_len;
};

class OpenAiClient {
 public:
  explicit OpenAiClient(OpenAiClientOptions options);

  ChatResponse chat(const ChatRequest& request) const;
  CompletionResponse complete(const CompletionRequest& request) const;
  std::vector<ModelCard> list_models() const;
  // POST /v1/load_lora_adapter; load_inplace replaces an adapter already loaded under name.
  void load_lora_adapter(const std::string& name, const std::string& path, bool load_inplace = false) const;
  void unload_lora_adapter(const std::string& name) const;
  // True when GET /health answers 200 within `timeout_seconds`; never throws.
  bool healthy(double timeout_seconds = 2) const;

  // The URL a path resolves to, e.g. url("/v1/models") → "http://host:port/v1/models".
  std::string url(const std::string& path) const;
  const OpenAiClientOptions& options() const { return options_; }

  // The JSON bodies, exposed for tests and for callers that post them elsewhere.
  static nlohmann::json chat_body(const ChatRequest& request);
  static nlohmann::json completion_body(const CompletionRequest& request);

 private:
  // POST (or GET when body is null) and return the body of a 2xx reply; throws otherwise.
  std::string send(const std::string& method, const std::string& path, const nlohmann::json* body,
                   double read_timeout_seconds) const;
  nlohmann::json send_json(const std::string& method, const std::string& path, const nlohmann::json* body) const;

  OpenAiClientOptions options_;
  std::string scheme_host_port_;  // "http://host:port"
  std::string api_root_;          // path prefix before /v1, "" for most servers
};

}  // namespace lathe
