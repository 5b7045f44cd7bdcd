// `lathe serve`: a vLLM-compatible OpenAI API server (cpp-httplib) over the continuous-
// batching scheduler. Endpoints and shapes follow vLLM (../shared/docs/INTEROP.md):
// GET /v1/models, POST /v1/completions, POST /v1/chat/completions (SSE streaming with
// `data: [DONE]`), POST /v1/load_lora_adapter and /v1/unload_lora_adapter, GET /health,
// POST /tokenize, POST /detokenize, GET /metrics.
//
// In-process use (tests, `lathe agent`, GRPO): construct, start(), talk to url(), shutdown().
// Departures from vLLM: runtime adapter loading is on by default (vLLM wants
// VLLM_ALLOW_RUNTIME_LORA_UPDATING); a full queue answers 503; bodies beyond
// --max-body-bytes answer 413; a streaming client that disconnects cancels its request, a
// non-streaming one runs to completion.
#pragma once
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "model/model_io.h"
#include "serve/metrics.h"
#include "serve/scheduler.h"

namespace lathe::serve {

struct LoraModule {
  std::string name, path;
  std::string base_model_name;  // the card's parent; "" = the first served model name
};

// "name=path" or vLLM's JSON form {"name", "path", "base_model_name"}; throws lathe::Error.
LoraModule parse_lora_module(const std::string& text);

struct ServerOptions {
  std::string model_dir;
  std::vector<std::string> served_model_names;  // first = the id; empty = model_dir as given
  std::string host = "127.0.0.1";
  int port = 8000;                              // 0 = any free port (see Server::port())
  std::string api_key;                          // "" = no authentication
  bool enable_lora = false;                     // also implied by lora_modules
  std::vector<LoraModule> lora_modules;
  bool runtime_lora_updating = true;            // /v1/load_lora_adapter and /v1/unload_lora_adapter
  SchedulerOptions scheduler;
  int64_t max_tokens_cap = 0;                   // per-request max_tokens limit (0 = only the context)
  size_t max_body_bytes = 8u << 20;             // larger bodies get 413
  std::string device = "cpu", dtype = "f32", chat_template;
  double shutdown_grace_seconds = 30;           // shutdown(): time running requests get to finish
};

// The option checks that need no model (the CLI runs them before loading it); lathe::Error.
void check_server_options(const ServerOptions& options);

class Server {
 public:
  // Loads the model and the --lora-modules adapters; throws lathe::Error naming the problem.
  explicit Server(ServerOptions options);
  // Serves an already loaded model (it must not be used elsewhere while the server runs).
  Server(ServerOptions options, LoadedModel model);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (lathe::Error when it cannot) and serves on background threads.
  void start();
  int port() const { return port_; }
  std::string url() const;  // "http://HOST:PORT" (the OpenAI base URL is url() + "/v1")

  // Graceful stop: new requests get 503, running and queued ones finish for up to the grace
  // period (options.shutdown_grace_seconds when negative) and are cancelled after it, their
  // responses are completed, then the listener closes. Safe to call more than once.
  void shutdown(double grace_seconds = -1);
  // Blocks until shutdown() has finished (called from another thread).
  void wait();

  const ServerOptions& options() const { return options_; }
  const std::string& model_name() const { return options_.served_model_names.front(); }

 private:
  void setup_routes();
  void load_startup_adapters();

  ServerOptions options_;
  LoadedModel model_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Scheduler> scheduler_;
  httplib::Server http_;
  std::thread listener_;
  int port_ = 0;
  int listen_socket_ = -1;  // the bound socket, to enlarge its backlog
  int64_t created_ = 0;
  std::atomic<int> in_flight_{0};  // generation responses still being written
  std::mutex stop_mutex_;
  bool stopped_ = false, finished_ = false;  // guarded by stop_mutex_
  std::condition_variable stop_cv_;
};

}  // namespace lathe::serve
