// Model-core throughput: prefill and decode tokens/s of random-weight Llama-family models
// through lathe::generate (the path `lathe generate`, rollouts and the server use), at batch
// 1 and 8, f32 and bf16, for the tiny shape and the Qwen2.5-0.5B shape; plus the machine's
// read bandwidth and the 0.5B-shape memory-bandwidth bound (weight bytes / bandwidth).
// bench/run_model_bench.sh runs this beside bench/reference/model_eager.py and prints ratios.
//
// Timing convention (identical in model_eager.py): prompt of P random tokens per row, N
// greedy new tokens with ignore_eos. prefill tokens/s = B*P / prefill_seconds; decode
// tokens/s = B*(N-1) / decode_seconds (N-1 one-token forwards plus N argmaxes). Best of
// --repeats after one short warm-up, because the shared machine's noise only ever slows.
// --shared-prefix S (lathe only): every row's prompt opens with the same S tokens (a system
// prompt); prefill is then timed with the prefix run once and, in the same run, with every
// row prefilled whole (BatchDecoderOptions::share_prefix off), and both are printed.
//
// Run from the project root: build-bench/bench/bench_model [--quick] [--help]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "core/runtime.h"
#include "model/fast_linear.h"
#include "model/generate.h"
#include "model/model_init.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<std::string> shapes{"tiny", "qwen2.5-0.5b-shape"};
  std::vector<std::string> dtypes{"f32", "bf16"};
  std::vector<int> batches{1, 8};
  int prompt = 128;
  int new_tokens = 64;
  int repeats = 3;
  int threads = 0;
  int shared_prefix = 0;
  bool bandwidth = true;
  std::string profile;  // chrome-trace file of one extra generate call (LibTorch's profiler)
};

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

void usage() {
  std::printf(
      "bench_model: prefill/decode tokens/s through lathe::generate (random weights)\n"
      "  --shapes LIST      tiny,qwen2.5-0.5b-shape (default both)\n"
      "  --dtypes LIST      f32,bf16 (default both)\n"
      "  --batches LIST     default 1,8\n"
      "  --prompt P         prompt tokens per row (default 128)\n"
      "  --new-tokens N     greedy tokens per row (default 64)\n"
      "  --repeats R        timed runs per configuration, best reported (default 3)\n"
      "  --threads T        intra-op threads, 0 = all cores (default 0)\n"
      "  --shared-prefix S  the first S prompt tokens are the same in every row; prefill timed\n"
      "                     with them run once and run per row (default 0: all random)\n"
      "  --no-bandwidth     skip the memory-bandwidth and matmul-throughput measurements\n"
      "  --quick            tiny shape, f32, repeats 2\n"
      "  --profile FILE     write LibTorch's per-op trace of one extra, untimed generate call of\n"
      "                     each configuration (chrome://tracing JSON; bench/trace_summary.py)\n");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_model: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--shapes") o.shapes = split(value());
    else if (a == "--dtypes") o.dtypes = split(value());
    else if (a == "--batches") {
      o.batches.clear();
      for (const auto& b : split(value())) o.batches.push_back(std::stoi(b));
    } else if (a == "--prompt") o.prompt = std::stoi(value());
    else if (a == "--new-tokens") o.new_tokens = std::stoi(value());
    else if (a == "--repeats") o.repeats = std::stoi(value());
    else if (a == "--threads") o.threads = std::stoi(value());
    else if (a == "--shared-prefix") o.shared_prefix = std::stoi(value());
    else if (a == "--no-bandwidth") o.bandwidth = false;
    else if (a == "--profile") o.profile = value();
    else if (a == "--quick") {
      o.shapes = {"tiny"};
      o.dtypes = {"f32"};
      o.repeats = 2;
    } else if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    } else {
      std::fprintf(stderr, "bench_model: unknown flag %s (see --help)\n", a.c_str());
      std::exit(2);
    }
  }
  if (o.new_tokens < 2 || o.prompt < 1 || o.repeats < 1 || o.shared_prefix < 0 || o.shared_prefix >= o.prompt) {
    std::fprintf(stderr, "bench_model: need --new-tokens >= 2, --prompt >= 1, --repeats >= 1, 0 <= --shared-prefix < --prompt\n");
    std::exit(2);
  }
  return o;
}

// Read bandwidth in bytes/s: the best of several vectorised, all-thread sums over a buffer
// far larger than the 32 MB L3, the access pattern decode has when it streams the weights.
double measure_read_bandwidth(size_t bytes) {
  auto buffer = torch::ones({static_cast<int64_t>(bytes / sizeof(float))}, torch::kFloat32);
  double best = 0;
  for (int i = 0; i < 7; ++i) {
    auto start = Clock::now();
    auto total = buffer.sum().item<double>();
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    if (total != static_cast<double>(buffer.numel())) std::fprintf(stderr, "bandwidth: bad sum\n");
    best = std::max(best, static_cast<double>(bytes) / s);
  }
  return best;
}

// Matmul throughput in FLOP/s of a prefill-sized linear (1024 tokens through the 0.5B
// shape's 896 -> 4864 gate projection): f32 goes to OpenBLAS sgemm, bf16 to oneDNN, whose
// avx512_bf16 kernels are the CPU's fast bf16 path (Zen 4 has no AMX).
double measure_matmul_flops(torch::ScalarType dtype) {
  const int64_t m = 1024, k = 896, n = 4864;
  auto x = torch::randn({m, k}).to(dtype), w = torch::randn({n, k}).to(dtype);
  double best = 0;
  for (int i = 0; i < 6; ++i) {
    auto start = Clock::now();
    auto y = torch::nn::functional::linear(x, w);
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    if (i > 0) best = std::max(best, 2.0 * m * k * n / s);  // the first call builds oneDNN primitives
  }
  return best;
}

// The one-row product decode does for every weight, in weight bytes read per second: x [1, 896]
// through the 0.5B shape's [151936, 896] head (272 MB in bf16, far beyond L3), by lathe's
// linear_base and by LibTorch's plain linear.
double measure_decode_product(torch::ScalarType dtype, bool lathe_path) {
  c10::InferenceMode inference;
  const int64_t k = 896, n = 151936;
  auto x = torch::randn({1, k}).to(dtype), w = torch::randn({n, k}).to(dtype);
  double best = 0;
  for (int i = 0; i < 6; ++i) {
    auto start = Clock::now();
    auto y = lathe_path ? lathe::linear_base(x, w, {}) : lathe::linear_reference(x, w, {});
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    if (i > 0) best = std::max(best, static_cast<double>(w.numel() * w.element_size()) / s);
  }
  return best;
}

size_t weight_bytes(lathe::CausalLM& model) {
  size_t total = 0;
  for (const auto& p : model->parameters()) total += p.numel() * p.element_size();
  return total;
}

struct Figures {
  double prefill_tok_s = 0, decode_tok_s = 0;
};

Figures run_one(lathe::CausalLM& model, int batch, const Options& o, int repeats, int new_tokens,
                bool share_prefix = true) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(model->config().vocab_size - 1));
  lathe::SamplingParams params;
  params.temperature = 0;
  params.max_new_tokens = new_tokens;
  params.ignore_eos = true;
  std::vector<int32_t> opening;
  for (int i = 0; i < o.shared_prefix; ++i) opening.push_back(token(rng));
  std::vector<lathe::GenerationRequest> requests(batch);
  for (auto& r : requests) {
    r.params = params;
    r.prompt = opening;
    for (int i = o.shared_prefix; i < o.prompt; ++i) r.prompt.push_back(token(rng));
  }
  lathe::BatchDecoderOptions decoder_options;
  decoder_options.share_prefix = share_prefix;
  Figures best;
  for (int i = 0; i < repeats; ++i) {
    auto result = lathe::generate(model, nullptr, requests, nullptr, decoder_options);
    best.prefill_tok_s = std::max(best.prefill_tok_s, double(batch) * o.prompt / result.prefill_seconds);
    best.decode_tok_s = std::max(best.decode_tok_s, double(batch) * (new_tokens - 1) / result.decode_seconds);
  }
  if (!o.profile.empty()) {
    torch::autograd::profiler::RecordProfile profile(o.profile);
    lathe::generate(model, nullptr, requests, nullptr, decoder_options);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  // Same thread environment as the lathe binary (OMP_WAIT_POLICY, OpenBLAS pool).
  lathe::prepare_process_environment(argc, argv);
  const Options o = parse(argc, argv);
  lathe::configure_threads(o.threads);
  auto env = [](const char* name) { return std::getenv(name) ? std::getenv(name) : ""; };
  std::printf("# lathe bench_model: libtorch %s, threads %d, OMP_WAIT_POLICY=%s OPENBLAS_NUM_THREADS=%s\n",
              TORCH_VERSION, torch::get_num_threads(), env("OMP_WAIT_POLICY"), env("OPENBLAS_NUM_THREADS"));

  double bandwidth = 0;
  if (o.bandwidth) {
    bandwidth = measure_read_bandwidth(size_t(1) << 31);  // 2 GiB
    std::printf("RESULT {\"impl\": \"lathe\", \"kind\": \"bandwidth\", \"read_gb_s\": %.2f, "
                "\"matmul_gflops_f32\": %.1f, \"matmul_gflops_bf16\": %.1f}\n",
                bandwidth / 1e9, measure_matmul_flops(torch::kFloat32) / 1e9, measure_matmul_flops(torch::kBFloat16) / 1e9);
    std::printf("RESULT {\"impl\": \"lathe\", \"kind\": \"decode_product\", \"gb_s_f32_lathe\": %.2f, "
                "\"gb_s_f32_torch\": %.2f, \"gb_s_bf16_lathe\": %.2f, \"gb_s_bf16_torch\": %.2f}\n",
                measure_decode_product(torch::kFloat32, true) / 1e9, measure_decode_product(torch::kFloat32, false) / 1e9,
                measure_decode_product(torch::kBFloat16, true) / 1e9,
                measure_decode_product(torch::kBFloat16, false) / 1e9);
  }
  std::fflush(stdout);

  c10::InferenceMode inference;
  for (const auto& shape : o.shapes) {
    for (const auto& dname : o.dtypes) {
      const auto dtype = lathe::parse_dtype(dname);
      lathe::CausalLM model(lathe::preset_config(shape));
      lathe::init_random_weights(model, 0);
      model->to(dtype);
      model->eval();
      const size_t bytes = weight_bytes(model);
      for (int batch : o.batches) {
        run_one(model, batch, o, 1, std::min(o.new_tokens, 4));  // warm-up: allocator, oneDNN primitives
        const Figures f = run_one(model, batch, o, o.repeats, o.new_tokens);
        std::printf(
            "RESULT {\"impl\": \"lathe\", \"shape\": \"%s\", \"dtype\": \"%s\", \"batch\": %d, \"prompt\": %d, "
            "\"new_tokens\": %d, \"prefill_tok_s\": %.2f, \"decode_tok_s\": %.2f, \"weight_bytes\": %zu, "
            "\"threads\": %d",
            shape.c_str(), dname.c_str(), batch, o.prompt, o.new_tokens, f.prefill_tok_s, f.decode_tok_s, bytes,
            torch::get_num_threads());
        if (o.shared_prefix > 0) {
          // The same prompts, every row prefilled whole, in the same process.
          const Figures whole = run_one(model, batch, o, o.repeats, o.new_tokens, /*share_prefix=*/false);
          std::printf(", \"shared_prefix\": %d, \"prefill_tok_s_unshared\": %.2f, \"prefill_speedup\": %.2f",
                      o.shared_prefix, whole.prefill_tok_s, f.prefill_tok_s / whole.prefill_tok_s);
        }
        if (bandwidth > 0 && batch == 1) {
          // One decode step streams every weight once; KV reads are small beside them.
          const double bound_tok_s = bandwidth / static_cast<double>(bytes);
          std::printf(", \"bound_tok_s\": %.2f, \"x_of_bound\": %.2f", bound_tok_s, bound_tok_s / f.decode_tok_s);
        }
        std::printf("}\n");
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
