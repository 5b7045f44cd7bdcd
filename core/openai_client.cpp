// OpenAI-compatible client on cpp-httplib (see openai_client.h).
#include "core/openai_client.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace lathe {

namespace {

// The server's own words for a failed request: the OpenAI envelope's message, vLLM's and
// FastAPI's variants, or the body itself; one line, bounded.
std::string server_message(const std::string& body) {
  std::string message = body;
  try {
    const auto j = nlohmann::json::parse(body);
    if (j.is_object()) {
      if (auto e = j.find("error"); e != j.end()) {
        if (e->is_object() && e->contains("message") && (*e)["message"].is_string()) {
          message = (*e)["message"].get<std::string>();
        } else if (e->is_string()) {
          message = e->get<std::string>();
        }
      } else if (auto d = j.find("detail"); d != j.end()) {
        message = d->is_string() ? d->get<std::string>() : d->dump();
      } else if (auto m = j.find("message"); m != j.end() && m->is_string()) {
        message = m->get<std::string>();
      }
    }
  } catch (const nlohmann::json::exception&) {
    // not JSON: the plain body is the message
  }
  std::replace(message.begin(), message.end(), '\n', ' ');
  std::replace(message.begin(), message.end(), '\r', ' ');
  constexpr size_t kMax = 400;
  if (message.size() > kMax) message = message.substr(0, kMax) + "…";
  return message.empty() ? "(empty body)" : message;
}

void set_timeout(httplib::Client& client, double seconds,
                 void (httplib::Client::*setter)(time_t, time_t)) {
  const double whole = std::floor(seconds);
  (client.*setter)(static_cast<time_t>(whole), static_cast<time_t>((seconds - whole) * 1e6));
}

std::string seconds_text(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", seconds);
  return buf;
}

template <typename T>
T field(const nlohmann::json& j, const char* key, const std::string& where, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw OpenAiError(where + ": field \"" + key + "\" has the wrong type: " + it->dump(), 0);
  }
}

TokenUsage parse_usage(const nlohmann::json& j, const std::string& where) {
  TokenUsage u;
  auto it = j.find("usage");
  if (it == j.end() || !it->is_object()) return u;
  u.prompt_tokens = field<int64_t>(*it, "prompt_tokens", where, 0);
  u.completion_tokens = field<int64_t>(*it, "completion_tokens", where, 0);
  u.total_tokens = field<int64_t>(*it, "total_tokens", where, u.prompt_tokens + u.completion_tokens);
  return u;
}

const nlohmann::json& choices_of(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array()) {
    throw OpenAiError(where + ": reply has no \"choices\" list", 0);
  }
  return j["choices"];
}

void add_common(nlohmann::json& body, const std::vector<std::string>& stop, const std::optional<uint64_t>& seed,
                const nlohmann::json& extra) {
  if (!stop.empty()) body["stop"] = stop;
  if (seed) body["seed"] = *seed;
  for (auto it = extra.begin(); it != extra.end(); ++it) body[it.key()] = it.value();
}

}  // namespace

OpenAiClient::OpenAiClient(OpenAiClientOptions options) : options_(std::move(options)) {
  const std::string& endpoint = options_.endpoint;
  const size_t scheme_end = endpoint.find("://");
  if (scheme_end == std::string::npos) {
    fail("endpoint '" + endpoint + "' is not a URL (expected e.g. http://127.0.0.1:8000/v1)");
  }
  const std::string scheme = endpoint.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") {
    fail("endpoint '" + endpoint + "': scheme must be http or https");
  }
  const size_t path_start = endpoint.find('/', scheme_end + 3);
  scheme_host_port_ = endpoint.substr(0, path_start);
  if (scheme_host_port_.size() <= scheme_end + 3) fail("endpoint '" + endpoint + "' has no host");
  std::string path = path_start == std::string::npos ? "" : endpoint.substr(path_start);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.size() >= 3 && path.compare(path.size() - 3, 3, "/v1") == 0) path.resize(path.size() - 3);
  api_root_ = path;
}

std::string OpenAiClient::url(const std::string& path) const { return scheme_host_port_ + api_root_ + path; }

std::string OpenAiClient::send(const std::string& method, const std::string& path, const nlohmann::json* body,
                               double read_timeout_seconds) const {
  httplib::Client client(scheme_host_port_);
  set_timeout(client, options_.connect_timeout_seconds, &httplib::Client::set_connection_timeout);
  set_timeout(client, read_timeout_seconds, &httplib::Client::set_read_timeout);
  set_timeout(client, read_timeout_seconds, &httplib::Client::set_write_timeout);
  httplib::Headers headers;
  if (!options_.api_key.empty()) headers.emplace("Authorization", "Bearer " + options_.api_key);
  const std::string where = method + " " + url(path);
  const auto started = std::chrono::steady_clock::now();
  httplib::Result result = body ? client.Post(api_root_ + path, headers, body->dump(-1, ' ', false,
                                                                                  nlohmann::json::error_handler_t::replace),
                                              "application/json")
                                : client.Get(api_root_ + path, headers);
  if (!result) {
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const httplib::Error error = result.error();
    std::string why;
    if (error == httplib::Error::Connection || error == httplib::Error::ConnectionTimeout) {
      why = "cannot connect (is the server running?)";
    } else if (error == httplib::Error::Read && waited >= read_timeout_seconds * 0.99) {
      why = "no reply within " + seconds_text(read_timeout_seconds);
    } else {
      why = "the connection failed";
    }
    throw OpenAiError(where + ": " + why + " [" + httplib::to_string(error) + "]", 0);
  }
  if (result->status < 200 || result->status >= 300) {
    throw OpenAiError(where + ": HTTP " + std::to_string(result->status) + ": " + server_message(result->body),
                      result->status);
  }
  return result->body;
}

nlohmann::json OpenAiClient::send_json(const std::string& method, const std::string& path,
                                       const nlohmann::json* body) const {
  const std::string text = send(method, path, body, options_.read_timeout_seconds);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    throw OpenAiError(method + " " + url(path) + ": reply is not JSON: " + server_message(text), 0);
  }
}

nlohmann::json OpenAiClient::chat_body(const ChatRequest& request) {
  nlohmann::json messages = nlohmann::json::array();
  for (const auto& m : request.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  nlohmann::json body = {{"model", request.model},       {"messages", messages},
                         {"max_tokens", request.max_tokens}, {"temperature", request.temperature},
                         {"top_p", request.top_p},       {"n", request.n}};
  if (request.top_logprobs) {
    body["logprobs"] = true;
    body["top_logprobs"] = *request.top_logprobs;
  }
  add_common(body, request.stop, request.seed, request.extra);
  return body;
}

nlohmann::json OpenAiClient::completion_body(const CompletionRequest& request) {
  if (request.prompts.empty() == request.prompt_token_ids.empty()) {
    fail("completion request: give exactly one of prompts and prompt_token_ids");
  }
  nlohmann::json prompt;
  if (!request.prompts.empty()) {
    prompt = request.prompts.size() == 1 ? nlohmann::json(request.prompts[0]) : nlohmann::json(request.prompts);
  } else {
    prompt = request.prompt_token_ids.size() == 1 ? nlohmann::json(request.prompt_token_ids[0])
                                                  : nlohmann::json(request.prompt_token_ids);
  }
  nlohmann::json body = {{"model", request.model},          {"prompt", prompt},
                         {"max_tokens", request.max_tokens},  {"temperature", request.temperature},
                         {"top_p", request.top_p},          {"n", request.n}};
  if (request.top_k > 0) body["top_k"] = request.top_k;
  if (request.logprobs) body["logprobs"] = *request.logprobs;
  if (request.echo) body["echo"] = true;
  add_common(body, request.stop, request.seed, request.extra);
  return body;
}

ChatResponse OpenAiClient::chat(const ChatRequest& request) const {
  const nlohmann::json body = chat_body(request);
  const nlohmann::json reply = send_json("POST", "/v1/chat/completions", &body);
  const std::string where = "POST " + url("/v1/chat/completions");
  ChatResponse out;
  out.id = field<std::string>(reply, "id", where, "");
  out.model = field<std::string>(reply, "model", where, request.model);
  for (const auto& c : choices_of(reply, where)) {
    ChatChoice choice;
    choice.index = field<int>(c, "index", where, static_cast<int>(out.choices.size()));
    choice.finish_reason = field<std::string>(c, "finish_reason", where, "");
    if (!c.contains("message") || !c["message"].is_object()) throw OpenAiError(where + ": a choice has no message", 0);
    choice.content = field<std::string>(c["message"], "content", where, "");
    if (c.contains("logprobs")) choice.logprobs = c["logprobs"];
    out.choices.push_back(std::move(choice));
  }
  if (out.choices.empty()) throw OpenAiError(where + ": reply has no choices", 0);
  std::sort(out.choices.begin(), out.choices.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  out.usage = parse_usage(reply, where);
  return out;
}

CompletionResponse OpenAiClient::complete(const CompletionRequest& request) const {
  const nlohmann::json body = completion_body(request);
  const nlohmann::json reply = send_json("POST", "/v1/completions", &body);
  const std::string where = "POST " + url("/v1/completions");
  CompletionResponse out;
  out.id = field<std::string>(reply, "id", where, "");
  out.model = field<std::string>(reply, "model", where, request.model);
  for (const auto& c : choices_of(reply, where)) {
    CompletionChoice choice;
    choice.index = field<int>(c, "index", where, static_cast<int>(out.choices.size()));
    choice.text = field<std::string>(c, "text", where, "");
    choice.finish_reason = field<std::string>(c, "finish_reason", where, "");
    choice.token_ids = field<std::vector<int64_t>>(c, "token_ids", where, {});
    if (auto lp = c.find("logprobs"); lp != c.end() && lp->is_object()) {
      choice.tokens = field<std::vector<std::string>>(*lp, "tokens", where, {});
      for (const auto& v : lp->value("token_logprobs", nlohmann::json::array())) {
        choice.token_logprobs.push_back(v.is_number() ? std::optional<double>(v.get<double>()) : std::nullopt);
      }
      for (const auto& v : lp->value("top_logprobs", nlohmann::json::array())) choice.top_logprobs.push_back(v);
      if (choice.token_logprobs.size() != choice.tokens.size()) {
        throw OpenAiError(where + ": logprobs.tokens and logprobs.token_logprobs differ in length", 0);
      }
    }
    out.choices.push_back(std::move(choice));
  }
  const size_t prompts = std::max(request.prompts.size(), request.prompt_token_ids.size());
  if (out.choices.size() != prompts * static_cast<size_t>(request.n)) {
    throw OpenAiError(where + ": expected " + std::to_string(prompts * request.n) + " choices (" +
                          std::to_string(prompts) + " prompts × n " + std::to_string(request.n) + "), got " +
                          std::to_string(out.choices.size()),
                      0);
  }
  std::sort(out.choices.begin(), out.choices.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  out.usage = parse_usage(reply, where);
  return out;
}

std::vector<ModelCard> OpenAiClient::list_models() const {
  const nlohmann::json reply = send_json("GET", "/v1/models", nullptr);
  const std::string where = "GET " + url("/v1/models");
  if (!reply.is_object() || !reply.contains("data") || !reply["data"].is_array()) {
    throw OpenAiError(where + ": reply has no \"data\" list", 0);
  }
  std::vector<ModelCard> cards;
  for (const auto& d : reply["data"]) {
    ModelCard card;
    card.id = field<std::string>(d, "id", where, "");
    card.root = field<std::string>(d, "root", where, "");
    if (d.contains("parent") && d["parent"].is_string()) card.parent = d["parent"].get<std::string>();
    if (d.contains("max_model_len") && d["max_model_len"].is_number_integer()) {
      card.max_model_len = d["max_model_len"].get<int64_t>();
    }
    cards.push_back(std::move(card));
  }
  return cards;
}

void OpenAiClient::load_lora_adapter(const std::string& name, const std::string& path, bool load_inplace) const {
  const nlohmann::json body = {{"lora_name", name}, {"lora_path", path}, {"load_inplace", load_inplace}};
  send("POST", "/v1/load_lora_adapter", &body, options_.read_timeout_seconds);
}

void OpenAiClient::unload_lora_adapter(const std::string& name) const {
  const nlohmann::json body = {{"lora_name", name}};
  send("POST", "/v1/unload_lora_adapter", &body, options_.read_timeout_seconds);
}

bool OpenAiClient::healthy(double timeout_seconds) const {
  try {
    httplib::Client client(scheme_host_port_);
    set_timeout(client, timeout_seconds, &httplib::Client::set_connection_timeout);
    set_timeout(client, timeout_seconds, &httplib::Client::set_read_timeout);
    auto result = client.Get(api_root_ + "/health");
    return result && result->status == 200;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace lathe
