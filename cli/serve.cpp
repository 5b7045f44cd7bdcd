// lathe serve --model DIR [--lora-modules name=path ...] [--host 127.0.0.1] [--port 8000]
//             [--api-key KEY] [--max-loras N] [--max-lora-rank R] [--served-model-name NAME] ...
// A vLLM-compatible OpenAI API server (serve/server.h); flags are named as vLLM names them.
// SIGTERM or SIGINT stops it gracefully (running requests finish, up to --shutdown-timeout)
// and it exits 0.
#include <csignal>
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "core/log.h"
#include "serve/server.h"

namespace lathe::cli {

namespace {
struct ServeOptions {
  ModelOptions model;
  std::string positional_model;
  serve::ServerOptions server;
  std::vector<std::string> lora_modules;
  bool disable_runtime_lora_updating = false;
  int64_t max_body_bytes = 8 << 20;
};
}  // namespace

void register_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "vLLM-compatible OpenAI API server (completions, chat, LoRA adapters)");
  add_model_options(*cmd, o->model, /*model_required=*/false);
  cmd->add_option("model_dir", o->positional_model, "model folder (as `vllm serve MODEL`; or --model)");
  auto& s = o->server;
  cmd->add_option("--served-model-name", s.served_model_names,
                  "name(s) the API knows the base model by (default: the --model path)");
  cmd->add_option("--host", s.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", s.port, "port to listen on (0 = any free port)")->capture_default_str();
  cmd->add_option("--api-key", s.api_key, "require 'Authorization: Bearer KEY' on /v1 routes (default: $VLLM_API_KEY)");
  cmd->add_flag("--enable-lora", s.enable_lora, "allow LoRA adapters (implied by --lora-modules)");
  cmd->add_option("--lora-modules", o->lora_modules,
                  "adapters to load at start: name=path or {\"name\": ..., \"path\": ..., \"base_model_name\": ...}");
  cmd->add_option("--max-loras", s.scheduler.max_loras, "LoRA adapters loaded at once")->capture_default_str();
  cmd->add_option("--max-lora-rank", s.scheduler.max_lora_rank, "largest adapter rank accepted")->capture_default_str();
  cmd->add_option("--max-model-len", s.scheduler.max_model_len,
                  "context length: prompt + max_tokens (default: the model's max_position_embeddings)");
  cmd->add_option("--max-num-seqs", s.scheduler.max_num_seqs, "sequences decoded together in one batch")
      ->capture_default_str();
  cmd->add_option("--max-waiting-requests", s.scheduler.max_waiting, "queued requests beyond which new ones get 503")
      ->capture_default_str();
  cmd->add_option("--max-tokens-cap", s.max_tokens_cap, "largest max_tokens a request may ask for (0 = the context)")
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", o->max_body_bytes, "request bodies larger than this get 413")->capture_default_str();
  cmd->add_flag("--disable-runtime-lora-updating", o->disable_runtime_lora_updating,
                "turn off /v1/load_lora_adapter and /v1/unload_lora_adapter");
  cmd->add_option("--shutdown-timeout", s.shutdown_grace_seconds,
                  "seconds running requests get to finish after SIGTERM before they are cancelled")
      ->capture_default_str();
  cmd->callback([o] {
    auto& s = o->server;
    if (o->model.model_dir.empty()) o->model.model_dir = o->positional_model;
    if (o->model.model_dir.empty()) fail("serve: give the model folder (--model DIR)");
    if (s.api_key.empty())
      if (const char* key = std::getenv("VLLM_API_KEY")) s.api_key = key;
    for (const auto& m : o->lora_modules) s.lora_modules.push_back(serve::parse_lora_module(m));
    s.runtime_lora_updating = !o->disable_runtime_lora_updating;
    if (o->max_body_bytes < 1024) fail("--max-body-bytes must be at least 1024");
    s.max_body_bytes = static_cast<size_t>(o->max_body_bytes);
    s.model_dir = o->model.model_dir;
    s.device = o->model.device;
    s.dtype = o->model.dtype;
    s.chat_template = o->model.chat_template;
    serve::check_server_options(s);  // before the model loads: a bad flag fails fast

    // Every thread the server starts inherits this mask; the signals are taken below by
    // sigwait, so shutdown runs in ordinary code, not in a signal handler.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    serve::Server server(s, load_model_from_options(o->model));
    server.start();
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    log::info(std::string("serve: ") + (signal_number == SIGTERM ? "SIGTERM" : "SIGINT") +
              ", finishing running requests");
    server.shutdown();
    log::info("serve: stopped");
  });
}

}  // namespace lathe::cli
