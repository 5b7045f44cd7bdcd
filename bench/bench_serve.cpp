// Load benchmark of `lathe serve`: continuous batching against one-request-at-a-time.
// A model of the "tiny" preset's shape (random weights, a BPE tokenizer learned here) and two
// random LoRA adapters are written to a temporary folder and served in-process on a loopback
// port (serve::Server, the same code as `lathe serve`). A fixed list of completions requests,
// cycling base / adapter A / adapter B over a few inventory prompts (greedy, ignore_eos, so
// every request generates exactly --max-tokens tokens), is sent twice: one at a time from one
// client, then by --clients concurrent clients. Prints requests/s, generated tokens/s and
// p50/p99 latency of both, and the throughput ratio; exits 1 if any request failed.
//
// Run from the project root: build/bench/bench_serve [--requests N] [--clients C] ...
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/runtime.h"
#include "model/bpe_trainer.h"
#include "model/lora.h"
#include "model/model_init.h"
#include "model/model_io.h"
#include "serve/server.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace fs = std::filesystem;

struct Options {
  int requests = 192;
  int clients = 32;
  int max_tokens = 32;
  int threads = 0;
  int max_num_seqs = 64;
};

void usage() {
  std::printf(
      "bench_serve: lathe serve under concurrent load vs one request at a time\n"
      "  --requests N      requests per phase (default 192)\n"
      "  --clients C       concurrent clients in the second phase (default 32)\n"
      "  --max-tokens T    generated tokens per request (default 32)\n"
      "  --max-num-seqs S  the server's batch size (default 64)\n"
      "  --threads T       intra-op threads, 0 = all cores (default 0)\n");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> int {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_serve: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoi(argv[++i]);
    };
    if (a == "--requests") o.requests = value();
    else if (a == "--clients") o.clients = value();
    else if (a == "--max-tokens") o.max_tokens = value();
    else if (a == "--max-num-seqs") o.max_num_seqs = value();
    else if (a == "--threads") o.threads = value();
    else if (a == "--help") {
      usage();
      std::exit(0);
    } else {
      std::fprintf(stderr, "bench_serve: unknown argument %s\n", a.c_str());
      usage();
      std::exit(2);
    }
  }
  if (o.requests < 1 || o.clients < 1 || o.max_tokens < 1 || o.max_num_seqs < 1) {
    std::fprintf(stderr, "bench_serve: every count must be >= 1\n");
    std::exit(2);
  }
  return o;
}

// The tiny preset's shape with a tokenizer learned from inventory-like text, and two adapters.
struct Workspace {
  std::string root, model, adapter_a, adapter_b;
  explicit Workspace(const std::string& dir) : root(dir), model(dir + "/model") {
    fs::create_directories(model);
    lathe::BpeTrainOptions bpe;
    bpe.num_merges = 400;
    std::string corpus;
    for (int i = 0; i < 8; ++i)
      corpus += "SELECT COUNT(*) FROM vehicles WHERE brand = '宝马' AND status = 'in_stock'; "
                "宝马在上海有几辆在库？ How many SUVs are in stock in Shanghai? 指导价格最高的车是哪一辆？\n";
    lathe::save_bpe_model(lathe::train_bpe(corpus, bpe), model);
    auto tokenizer = lathe::load_tokenizer(model);
    lathe::ModelConfig c = lathe::preset_config("tiny");
    c.vocab_size = tokenizer->vocab_size();
    c.bos_token_id.reset();
    c.eos_token_ids.clear();
    if (tokenizer->eos_id()) c.eos_token_ids = {*tokenizer->eos_id()};
    lathe::CausalLM m(c);
    lathe::init_random_weights(m, 7);
    lathe::save_model(m, model, torch::kFloat32);
    adapter_a = adapter(m, "a", 1);
    adapter_b = adapter(m, "b", 2);
  }
  std::string adapter(lathe::CausalLM& m, const std::string& name, uint64_t seed) {
    lathe::LoraConfig config;
    config.r = 8;
    config.alpha = 16;
    config.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"};
    lathe::add_lora_adapter(m, name, config, seed);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : m->named_parameters(true))
        if (p.key().find(".lora_B." + name + ".") != std::string::npos) p.value().normal_(0.0, 0.02);
    }
    const std::string out = root + "/adapter-" + name;
    lathe::save_peft_adapter(m, name, config, out);
    lathe::remove_adapter(m, name);
    return out;
  }
  ~Workspace() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

struct Phase {
  double seconds = 0;
  std::vector<double> latencies;  // seconds, per request
  int64_t generated = 0;
  int errors = 0;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

Phase run(int port, const std::vector<json>& bodies, int clients) {
  Phase phase;
  std::atomic<size_t> next{0};
  std::mutex mutex;
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(600, 0);
      client.set_keep_alive(true);
      for (size_t i; (i = next++) < bodies.size();) {
        const auto t0 = Clock::now();
        auto r = client.Post("/v1/completions", bodies[i].dump(), "application/json");
        const double latency = std::chrono::duration<double>(Clock::now() - t0).count();
        std::lock_guard<std::mutex> lock(mutex);
        if (!r || r->status != 200) {
          ++phase.errors;
          std::fprintf(stderr, "request %zu failed: %s\n", i, r ? r->body.c_str() : httplib::to_string(r.error()).c_str());
          continue;
        }
        phase.latencies.push_back(latency);
        phase.generated += json::parse(r->body)["usage"]["completion_tokens"].get<int64_t>();
      }
    });
  }
  for (auto& t : threads) t.join();
  phase.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return phase;
}

void report(const char* name, const Phase& p, size_t requests) {
  std::printf("%-12s %7zu %8d %10.2f %12.1f %10.1f %10.1f %8.2f\n", name, requests, p.errors, requests / p.seconds,
              p.generated / p.seconds, 1000 * percentile(p.latencies, 0.5), 1000 * percentile(p.latencies, 0.99),
              p.seconds);
}

}  // namespace

int main(int argc, char** argv) {
  lathe::prepare_process_environment(argc, argv);
  const Options o = parse(argc, argv);
  lathe::configure_threads(o.threads);
  Workspace ws((fs::temp_directory_path() / ("lathe-bench-serve-" + std::to_string(::getpid()))).string());

  lathe::serve::ServerOptions so;
  so.model_dir = ws.model;
  so.served_model_names = {"tiny"};
  so.port = 0;
  so.lora_modules = {{"inventory-a", ws.adapter_a, ""}, {"inventory-b", ws.adapter_b, ""}};
  so.scheduler.max_loras = 2;
  so.scheduler.max_num_seqs = o.max_num_seqs;
  so.scheduler.max_waiting = static_cast<size_t>(std::max(o.requests, o.clients));
  lathe::serve::Server server(so);
  server.start();

  const std::vector<std::string> models{"tiny", "inventory-a", "inventory-b"};
  const std::vector<std::string> prompts{"宝马在上海有几辆在库？", "How many SUVs are in stock in Shanghai?",
                                         "SELECT COUNT(*) FROM vehicles WHERE", "指导价格最高的车是哪一辆？"};
  std::vector<json> bodies;
  for (int i = 0; i < o.requests; ++i)
    bodies.push_back({{"model", models[i % models.size()]},
                      {"prompt", prompts[(i / models.size()) % prompts.size()]},
                      {"max_tokens", o.max_tokens},
                      {"temperature", 0},
                      {"ignore_eos", true}});

  run(server.port(), {bodies.begin(), bodies.begin() + std::min<size_t>(bodies.size(), 6)}, 3);  // warm-up
  std::printf("lathe serve load benchmark: %d requests x %d tokens, models %s/%s/%s, max-num-seqs %d, %d threads\n",
              o.requests, o.max_tokens, models[0].c_str(), models[1].c_str(), models[2].c_str(), o.max_num_seqs,
              o.threads ? o.threads : lathe::available_cores());
  std::printf("%-12s %7s %8s %10s %12s %10s %10s %8s\n", "phase", "reqs", "errors", "req/s", "gen tok/s", "p50 ms",
              "p99 ms", "wall s");
  const Phase sequential = run(server.port(), bodies, 1);
  report("sequential", sequential, bodies.size());
  const Phase concurrent = run(server.port(), bodies, o.clients);
  char label[32];
  std::snprintf(label, sizeof label, "%d clients", o.clients);
  report(label, concurrent, bodies.size());
  std::printf("throughput ratio (concurrent / sequential): %.2fx\n", sequential.seconds / concurrent.seconds);
  server.shutdown(0);
  return sequential.errors + concurrent.errors == 0 ? 0 : 1;
}
