#include "serve/server.h"

#include <algorithm>
#include <climits>
#include <csignal>
#include <sys/socket.h>
#include <ctime>
#include <functional>

#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "serve/api_error.h"
#include "serve/openai_protocol.h"

namespace lathe::serve {

namespace {

using httplib::Request;
using httplib::Response;

// Waiting on a job wakes up this often to notice a vanished client or a stopped server.
constexpr auto kPoll = std::chrono::milliseconds(200);
// A stream idle this long gets an SSE comment, which also reveals a closed connection.
constexpr auto kKeepAlive = std::chrono::seconds(2);

void send_json(Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(Response& res, const ApiError& e) { send_json(res, e.status, error_body(e.status, e.what(), e.param)); }

// A request body, read here rather than by httplib: cpp-httplib 0.11 applies
// set_payload_max_length only to a body with Content-Length (one too long it reads, discards
// and answers 413) and buffers a chunked one of any size. A chunked body is read and
// discarded beyond `limit` the same way: memory stays bounded, and the client still gets its
// 413 rather than a connection reset.
std::string read_body(const httplib::ContentReader& content, Response& res, size_t limit) {
  std::string body;
  bool too_large = false;
  const bool complete = content([&](const char* data, size_t size) {
    if (too_large || size > limit - body.size()) {
      too_large = true;
      std::string().swap(body);
    } else {
      body.append(data, size);
    }
    return true;
  });
  if (too_large || res.status == 413)
    throw ApiError(413, "The request body exceeds " + std::to_string(limit) + " bytes (--max-body-bytes).");
  if (!complete) {
    res.set_header("Connection", "close");  // where the next request would start is unknown
    throw ApiError(400, "The request body could not be read (incomplete, or a malformed chunked encoding).");
  }
  return body;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

json model_card(const std::string& id, const std::string& root, const json& parent, const json& max_model_len,
                int64_t created) {
  json permission = {{"id", random_id("modelperm-")},
                     {"object", "model_permission"},
                     {"created", created},
                     {"allow_create_engine", false},
                     {"allow_sampling", true},
                     {"allow_logprobs", true},
                     {"allow_search_indices", false},
                     {"allow_view", true},
                     {"allow_fine_tuning", false},
                     {"organization", "*"},
                     {"group", nullptr},
                     {"is_blocking", false}};
  return {{"id", id},          {"object", "model"}, {"created", created},
          {"owned_by", "lathe"}, {"root", root},     {"parent", parent},
          {"max_model_len", max_model_len}, {"permission", json::array({permission})}};
}

LoadedModel load_from_options(const ServerOptions& o) {
  if (o.model_dir.empty()) fail("serve: --model is required");
  return load_model(o.model_dir, parse_device(o.device), parse_dtype(o.dtype), o.chat_template);
}

// Everything one completions/chat response needs besides its job.
struct ResponseContext {
  bool chat = false;
  std::string id, model;
  int64_t created = 0;
  GenerationFields fields;
  std::vector<PromptInput> prompts;
  int n = 1;
  int64_t prompt_tokens = 0;
  const Tokenizer* tokenizer = nullptr;
};

json choice_logprobs(const ResponseContext& ctx, const std::vector<TokenChoice>& choices, size_t& offset) {
  if (!ctx.fields.logprobs) return nullptr;
  return ctx.chat ? chat_logprobs(*ctx.tokenizer, choices, ctx.fields.top_logprobs)
                  : completion_logprobs(*ctx.tokenizer, choices, ctx.fields.top_logprobs, offset);
}

json full_response(const ResponseContext& ctx, std::vector<Completion>& done) {
  json choices = json::array();
  int64_t completion_tokens = 0;
  for (size_t i = 0; i < done.size(); ++i) {
    const Completion& c = done[i];
    completion_tokens += static_cast<int64_t>(c.tokens.size());
    const std::string echo = ctx.fields.echo ? ctx.prompts[i / ctx.n].text : std::string();
    size_t offset = 0;
    json choice = {{"index", i}, {"logprobs", choice_logprobs(ctx, c.choices, offset)}};
    if (ctx.chat) choice["message"] = {{"role", "assistant"}, {"content", c.text}, {"tool_calls", json::array()}};
    else choice["text"] = echo + c.text;
    choice["finish_reason"] = c.finish_reason;
    choice["stop_reason"] = stop_reason(c);
    if (ctx.fields.return_token_ids) {
      choice["token_ids"] = c.tokens;
      if (!ctx.chat) choice["prompt_token_ids"] = ctx.prompts[i / ctx.n].ids;
    }
    choices.push_back(std::move(choice));
  }
  json response = {{"id", ctx.id},
                   {"object", ctx.chat ? "chat.completion" : "text_completion"},
                   {"created", ctx.created},
                   {"model", ctx.model},
                   {"choices", choices},
                   {"usage", usage(ctx.prompt_tokens, completion_tokens)}};
  if (ctx.chat && ctx.fields.return_token_ids) response["prompt_token_ids"] = ctx.prompts[0].ids;
  return response;
}

// A server-sent-events response fed by the job's events.
class EventStream {
 public:
  EventStream(ResponseContext ctx, std::shared_ptr<Job> job)
      : ctx_(std::move(ctx)),
        job_(std::move(job)),
        tokens_(job_->choices(), 0),
        offsets_(job_->choices(), 0),
        prompt_ids_sent_(job_->choices(), false) {}

  // httplib calls this until sink.done(); false ends the response (the client is gone).
  bool provide(httplib::DataSink& sink) {
    if (!started_) {
      started_ = true;
      return send(sink, opening());
    }
    try {
      auto event = job_->next(kPoll);
      if (!event) {
        if (job_->done()) return close(sink, "");
        if (Clock::now() - last_write_ < kKeepAlive) return true;
        return write(sink, ": keep-alive\n\n");
      }
      if (!event->finished) ++tokens_[event->choice];
      return send(sink, chunk_for(*event));
    } catch (const ApiError& e) {
      return close(sink, "data: " + dump(error_body(e.status, e.what(), e.param)) + "\n\n");
    }
  }

  void cancel() { job_->cancel(); }

 private:
  json chunk(json choices) const {
    json c = {{"id", ctx_.id},
              {"object", ctx_.chat ? "chat.completion.chunk" : "text_completion"},
              {"created", ctx_.created},
              {"model", ctx_.model},
              {"choices", std::move(choices)}};
    return c;
  }

  // Chat: the role delta of every choice; completions with echo: the prompt text.
  std::string opening() {
    std::string out;
    for (size_t i = 0; i < job_->choices(); ++i) {
      json choice;
      if (ctx_.chat) {
        choice = {{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
                  {"finish_reason", nullptr}};
      } else if (ctx_.fields.echo) {
        choice = {{"index", i}, {"text", ctx_.prompts[i / ctx_.n].text}, {"logprobs", nullptr},
                  {"finish_reason", nullptr}, {"stop_reason", nullptr}};
      } else {
        continue;
      }
      json c = chunk(json::array({choice}));
      if (ctx_.fields.continuous_usage) c["usage"] = usage(ctx_.prompt_tokens, 0);
      if (ctx_.chat && ctx_.fields.return_token_ids) c["prompt_token_ids"] = ctx_.prompts[0].ids;
      out += "data: " + dump(c) + "\n\n";
    }
    return out;
  }

  std::string chunk_for(const JobEvent& e) {
    const bool finished = e.finished.has_value();
    const bool ids = ctx_.fields.return_token_ids;
    if (!finished && e.delta.empty() && !e.logprobs && !ids) return "";  // held-back text, nothing to say yet
    json logprobs = nullptr;
    if (e.logprobs) logprobs = choice_logprobs(ctx_, {*e.logprobs}, offsets_[e.choice]);
    json choice = {{"index", e.choice}};
    if (ctx_.chat) choice["delta"] = {{"content", e.delta}};
    else choice["text"] = e.delta;
    choice["logprobs"] = logprobs;
    choice["finish_reason"] = finished ? json(e.finished->finish_reason) : json(nullptr);
    if (finished || !ctx_.chat) choice["stop_reason"] = finished ? stop_reason(*e.finished) : json(nullptr);
    if (ids) {
      choice["token_ids"] = finished ? json::array() : json::array({e.token});
      if (!ctx_.chat && !prompt_ids_sent_[e.choice]) {
        choice["prompt_token_ids"] = ctx_.prompts[e.choice / ctx_.n].ids;
        prompt_ids_sent_[e.choice] = true;
      }
    }
    json c = chunk(json::array({choice}));
    if (ctx_.fields.continuous_usage) c["usage"] = usage(ctx_.prompt_tokens, tokens_[e.choice]);
    return "data: " + dump(c) + "\n\n";
  }

  bool close(httplib::DataSink& sink, const std::string& error_event) {
    std::string out = error_event;
    if (error_event.empty() && ctx_.fields.include_usage) {
      int64_t total = 0;
      for (int64_t t : tokens_) total += t;
      json c = chunk(json::array());
      c["usage"] = usage(ctx_.prompt_tokens, total);
      out += "data: " + dump(c) + "\n\n";
    }
    out += "data: [DONE]\n\n";
    if (!write(sink, out)) return false;
    sink.done();
    return true;
  }

  bool send(httplib::DataSink& sink, const std::string& text) { return text.empty() || write(sink, text); }

  bool write(httplib::DataSink& sink, const std::string& text) {
    last_write_ = Clock::now();
    if (sink.write(text.data(), text.size())) return true;
    job_->cancel();
    return false;
  }

  ResponseContext ctx_;
  std::shared_ptr<Job> job_;
  std::vector<int64_t> tokens_;   // per choice, for usage
  std::vector<size_t> offsets_;   // per choice, completions' text_offset
  std::vector<bool> prompt_ids_sent_;  // per choice, with return_token_ids
  bool started_ = false;
  Clock::time_point last_write_ = Clock::now();
};

}  // namespace

LoraModule parse_lora_module(const std::string& text) {
  LoraModule m;
  if (!text.empty() && text.front() == '{') {
    json j;
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      fail("--lora-modules " + text + ": invalid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("name") || !j.contains("path") || !j["name"].is_string() || !j["path"].is_string())
      fail("--lora-modules " + text + ": the JSON form needs string \"name\" and \"path\"");
    m.name = j["name"].get<std::string>();
    m.path = j["path"].get<std::string>();
    if (j.contains("base_model_name") && j["base_model_name"].is_string())
      m.base_model_name = j["base_model_name"].get<std::string>();
  } else {
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
      fail("--lora-modules " + text + ": expected name=path or {\"name\": ..., \"path\": ...}");
    m.name = text.substr(0, eq);
    m.path = text.substr(eq + 1);
  }
  return m;
}

Server::Server(ServerOptions options) : Server(options, load_from_options(options)) {}

void check_server_options(const ServerOptions& o) {
  static const std::vector<int> ranks{1, 8, 16, 32, 64, 128, 256, 320, 512};
  if (std::find(ranks.begin(), ranks.end(), o.scheduler.max_lora_rank) == ranks.end())
    fail("--max-lora-rank " + std::to_string(o.scheduler.max_lora_rank) +
         " is not one of 1, 8, 16, 32, 64, 128, 256, 320, 512 (as vLLM accepts)");
  if (o.scheduler.max_loras < 1) fail("--max-loras must be >= 1");
  if (static_cast<int>(o.lora_modules.size()) > o.scheduler.max_loras)
    fail("--lora-modules names " + std::to_string(o.lora_modules.size()) + " adapters but --max-loras is " +
         std::to_string(o.scheduler.max_loras) + "; raise --max-loras");
  if (o.scheduler.max_waiting < 1) fail("--max-waiting-requests must be >= 1");
  if (o.scheduler.max_num_seqs < 1) fail("--max-num-seqs must be >= 1");
  if (o.port < 0 || o.port > 65535) fail("--port must be in 0..65535, got " + std::to_string(o.port));
  if (o.max_tokens_cap < 0) fail("--max-tokens-cap must be >= 0");
}

Server::Server(ServerOptions options, LoadedModel model) : options_(std::move(options)), model_(std::move(model)) {
  check_server_options(options_);
  if (options_.served_model_names.empty()) options_.served_model_names = {options_.model_dir.empty() ? model_.dir : options_.model_dir};
  if (options_.model_dir.empty()) options_.model_dir = model_.dir;
  if (!options_.lora_modules.empty()) options_.enable_lora = true;
  metrics_ = std::make_unique<Metrics>(model_name());
  scheduler_ = std::make_unique<Scheduler>(model_, options_.scheduler, *metrics_);
  created_ = static_cast<int64_t>(std::time(nullptr));
  load_startup_adapters();
  setup_routes();
}

Server::~Server() { shutdown(0); }

void Server::load_startup_adapters() {
  for (const auto& m : options_.lora_modules) {
    for (const auto& served : options_.served_model_names)
      if (m.name == served) fail("--lora-modules " + m.name + ": the name is the base model's served name");
    try {
      scheduler_->load_adapter(m.name, m.path, false);
    } catch (const ApiError& e) {
      fail("--lora-modules " + m.name + "=" + m.path + ": " + e.what());
    }
  }
}

std::string Server::url() const { return "http://" + options_.host + ":" + std::to_string(port_); }

void Server::start() {
  // A peer that closed its socket must not kill the process on the next write.
  std::signal(SIGPIPE, SIG_IGN);
  // A pool thread per connection: enough for every running and queued request, so a full
  // queue is answered with 503 instead of connections waiting unseen in the pool.
  const size_t threads = static_cast<size_t>(options_.scheduler.max_num_seqs) + options_.scheduler.max_waiting + 16;
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_.set_payload_max_length(options_.max_body_bytes);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second server
  // bind the same port and silently share its connections.
  http_.set_socket_options([this](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_socket_ = sock;
  });
  if (options_.port == 0) {
    port_ = http_.bind_to_any_port(options_.host);
    if (port_ < 0) fail("serve: cannot listen on " + options_.host + " (any port)");
  } else {
    if (!http_.bind_to_port(options_.host, options_.port))
      fail("serve: cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
           " (in use, or not an address of this machine); pick another --port or --host");
    port_ = options_.port;
  }
  // The library was built with a listen backlog of 5: a burst of clients (32 connecting at
  // once) overflows it and the kernel drops connections. listen() again on the bound socket
  // only enlarges the queue.
  if (listen_socket_ >= 0) ::listen(listen_socket_, SOMAXCONN);
  scheduler_->start();
  listener_ = std::thread([this] { http_.listen_after_bind(); });
  log::info("serve: " + model_name() + " on " + url() + "/v1");
}

void Server::shutdown(double grace_seconds) {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (grace_seconds < 0) grace_seconds = options_.shutdown_grace_seconds;
  scheduler_->shutdown(std::chrono::milliseconds(static_cast<int64_t>(grace_seconds * 1000)));
  // Every job has finished or was cancelled; let their responses reach the clients.
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (in_flight_ > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  http_.stop();
  if (listener_.joinable()) listener_.join();
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    finished_ = true;
  }
  stop_cv_.notify_all();
}

void Server::wait() {
  std::unique_lock<std::mutex> lock(stop_mutex_);
  stop_cv_.wait(lock, [&] { return finished_; });
}

void Server::setup_routes() {
  // Every handler answers errors in the OpenAI envelope; nothing a request does escapes.
  auto guarded = [](auto handler) {
    return [handler](const Request& req, Response& res) {
      try {
        handler(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const std::exception& e) {
        send_error(res, ApiError(500, std::string("internal error: ") + e.what()));
      }
    };
  };

  http_.set_pre_routing_handler([this](const Request& req, Response& res) {
    // As vLLM: with --api-key, every /v1 route needs "Authorization: Bearer KEY".
    if (options_.api_key.empty() || req.path.rfind("/v1", 0) != 0 || req.method == "OPTIONS")
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string given = req.get_header_value("Authorization");
    if (given.rfind("Bearer ", 0) == 0 && constant_time_equal(given.substr(7), options_.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    res.status = 401;
    res.set_content(R"({"error":"Unauthorized"})", "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
  // Every route that takes a body reads it through read_body; handler(body, res).
  auto with_body = [this, guarded](std::function<void(const std::string&, Response&)> handler) {
    return httplib::Server::HandlerWithContentReader(
        [this, guarded, handler](const Request& req, Response& res, const httplib::ContentReader& content) {
          guarded([&](const Request&, Response& r) { handler(read_body(content, r, options_.max_body_bytes), r); })(
              req, res);
        });
  };
  http_.set_error_handler(httplib::Server::HandlerWithResponse([](const Request&, Response& res) {
    // Statuses httplib sets itself (an unknown GET route, a malformed request) get the envelope too.
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = "Not Found";
    if (res.status != 404) message = "The request could not be handled (HTTP " + std::to_string(res.status) + ").";
    send_json(res, res.status, error_body(res.status, message));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http_.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
    send_error(res, ApiError(500, "internal error"));
  });

  http_.Get("/health", [](const Request&, Response& res) { res.status = 200; });

  http_.Get("/metrics", [this](const Request&, Response& res) {
    res.set_content(metrics_->render(scheduler_->running(), scheduler_->waiting(), scheduler_->kv_cache_usage()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });

  http_.Get("/v1/models", guarded([this](const Request&, Response& res) {
    json data = json::array();
    for (const auto& name : options_.served_model_names)
      data.push_back(model_card(name, options_.model_dir, nullptr, scheduler_->max_model_len(), created_));
    for (const auto& a : scheduler_->adapters()) {
      std::string parent = model_name();
      for (const auto& m : options_.lora_modules)
        if (m.name == a.name && !m.base_model_name.empty()) parent = m.base_model_name;
      data.push_back(model_card(a.name, a.path, parent, nullptr, a.created));
    }
    send_json(res, 200, {{"object", "list"}, {"data", data}});
  }));

  auto generation = [this](bool chat) {
    return [this, chat](const std::string& text, Response& res) {
      const json body = parse_request_body(text);
      ResponseContext ctx;
      ctx.chat = chat;
      ctx.fields = parse_generation_fields(body, chat);
      ctx.model = ctx.fields.model.empty() ? model_name() : ctx.fields.model;
      std::string adapter;  // "" = the base model
      const auto& names = options_.served_model_names;
      if (!ctx.fields.model.empty() && std::find(names.begin(), names.end(), ctx.fields.model) == names.end()) {
        if (!scheduler_->has_adapter(ctx.fields.model))
          throw ApiError(404, "The model `" + ctx.fields.model + "` does not exist.", "model");
        adapter = ctx.fields.model;
      }
      const Tokenizer& tokenizer = *model_.tokenizer;
      ctx.tokenizer = &tokenizer;
      if (chat) ctx.prompts.push_back({encode_chat(body, parse_chat_messages(body), model_.chat, tokenizer), ""});
      else ctx.prompts = parse_completion_prompts(body, tokenizer);
      ctx.n = ctx.fields.params.n;
      std::vector<GenerationRequest> requests;
      for (const auto& p : ctx.prompts) {
        GenerationRequest r;
        r.prompt = p.ids;
        r.params = ctx.fields.params;
        r.params.max_new_tokens = resolve_max_tokens(ctx.fields, chat, static_cast<int64_t>(p.ids.size()),
                                                     scheduler_->max_model_len(), options_.max_tokens_cap);
        ctx.prompt_tokens += static_cast<int64_t>(p.ids.size());
        requests.push_back(std::move(r));
      }
      ctx.id = random_id(chat ? "chatcmpl-" : "cmpl-");
      ctx.created = static_cast<int64_t>(std::time(nullptr));
      auto job = std::make_shared<Job>(std::move(requests), adapter);
      scheduler_->submit(job);
      ++in_flight_;
      if (!ctx.fields.stream) {
        struct Done {
          std::atomic<int>& n;
          ~Done() { --n; }
        } done{in_flight_};
        std::vector<Completion> completions(job->choices());
        while (!job->done()) {
          auto event = job->next(kPoll);
          if (event && event->finished) completions[event->choice] = std::move(*event->finished);
        }
        send_json(res, 200, full_response(ctx, completions));
        return;
      }
      auto stream = std::make_shared<EventStream>(std::move(ctx), job);
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream", [stream](size_t, httplib::DataSink& sink) { return stream->provide(sink); },
          [this, stream](bool success) {
            if (!success) stream->cancel();
            --in_flight_;
          });
    };
  };
  http_.Post("/v1/completions", with_body(generation(false)));
  http_.Post("/v1/chat/completions", with_body(generation(true)));

  auto require_lora = [this] {
    if (!options_.enable_lora) throw ApiError(400, "LoRA is not enabled; start the server with --enable-lora.");
  };
  if (options_.runtime_lora_updating) {
    http_.Post("/v1/load_lora_adapter", with_body([this, require_lora](const std::string& text, Response& res) {
      require_lora();
      const json body = parse_request_body(text);
      const LoadLoraRequest load = parse_load_lora_request(body);
      const auto& names = options_.served_model_names;
      if (std::find(names.begin(), names.end(), load.name) != names.end())
        throw ApiError(400, "'" + load.name + "' is the base model's name; choose another lora_name.", "lora_name");
      scheduler_->load_adapter(load.name, load.path, load.in_place);
      res.set_content("Success: LoRA adapter '" + load.name + "' added successfully.", "text/plain");
    }));
    http_.Post("/v1/unload_lora_adapter", with_body([this, require_lora](const std::string& text, Response& res) {
      require_lora();
      const json body = parse_request_body(text);
      const std::string name = optional_string_field(body, "lora_name");
      scheduler_->unload_adapter(name);
      res.set_content("Success: LoRA adapter '" + name + "' removed successfully.", "text/plain");
    }));
  }

  http_.Post("/tokenize", with_body([this](const std::string& text, Response& res) {
    const json body = parse_request_body(text);
    const std::string model = optional_string_field(body, "model");
    const auto& names = options_.served_model_names;
    if (!model.empty() && std::find(names.begin(), names.end(), model) == names.end() && !scheduler_->has_adapter(model))
      throw ApiError(404, "The model `" + model + "` does not exist.", "model");
    const Tokenizer& tokenizer = *model_.tokenizer;
    std::vector<int32_t> ids;
    if (body.contains("messages")) {
      ids = encode_chat(body, parse_chat_messages(body), model_.chat, tokenizer);
    } else {
      if (!body.contains("prompt") || !body["prompt"].is_string())
        throw ApiError(400, "'prompt' (a string) or 'messages' is required.", "prompt");
      EncodeOptions enc;
      auto add = body.find("add_special_tokens");
      const bool special = add == body.end() || add->is_null() || (add->is_boolean() && add->get<bool>());
      enc.add_bos = special && tokenizer.add_bos_token();
      ids = tokenizer.encode(body["prompt"].get<std::string>(), enc);
    }
    json strs = nullptr;
    if (optional_bool_field(body, "return_token_strs").value_or(false)) {
      strs = json::array();
      for (int32_t id : ids) strs.push_back(tokenizer.id_to_piece(id));
    }
    send_json(res, 200, {{"count", ids.size()}, {"max_model_len", scheduler_->max_model_len()}, {"tokens", ids},
                         {"token_strs", strs}});
  }));

  http_.Post("/detokenize", with_body([this](const std::string& text, Response& res) {
    const json body = parse_request_body(text);
    const std::string model = optional_string_field(body, "model");
    const auto& names = options_.served_model_names;
    if (!model.empty() && std::find(names.begin(), names.end(), model) == names.end() && !scheduler_->has_adapter(model))
      throw ApiError(404, "The model `" + model + "` does not exist.", "model");
    if (!body.contains("tokens") || !body["tokens"].is_array())
      throw ApiError(400, "'tokens' must be a list of token ids.", "tokens");
    std::vector<int32_t> ids;
    for (const auto& t : body["tokens"]) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
        throw ApiError(400, "'tokens' must be a list of token ids, got " + describe(t), "tokens");
      ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    check_token_ids(ids, *model_.tokenizer, "tokens");
    send_json(res, 200, {{"prompt", model_.tokenizer->decode(ids)}});
  }));

  // A body sent to any other route is read within the limit too, then answered 404.
  const auto unknown_route = with_body([](const std::string&, Response&) { throw ApiError(404, "Not Found"); });
  http_.Post(".*", unknown_route);
  http_.Put(".*", unknown_route);
  http_.Patch(".*", unknown_route);
  http_.Delete(".*", unknown_route);
}

}  // namespace lathe::serve
