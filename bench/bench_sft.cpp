// LoRA training throughput: tokens/s of one SFT optimizer step (forward, backward, gradient
// clipping, AdamW) and the process's peak resident memory, for a random-weight model of the
// tiny shape or the Qwen2.5-0.5B shape, with a LoRA adapter (r 16, alpha 32, all seven
// projections). The step is the recipe's own: train/lm_loss (hidden states gathered at the
// scored positions before the lm_head), train/optimizer's clipping and AdamW.
// bench/run_sft_bench.sh runs it beside bench/reference/sft_eager.py and prints ratios.
//
// dtype: f32; bf16 (model.dtype=bf16: frozen base stored in bf16, adapters f32); autocast
// (training.autocast=bf16: f32 weights, forward under bf16 autocast). One configuration per
// process, so the peak resident memory (ru_maxrss) belongs to it alone. Timing convention
// (identical in sft_eager.py): tokens/s = B*T / step time, best and median over --steps
// after --warmup steps; also the median CPU time of a step (user + system, all threads), which
// a machine shared with other work disturbs far less than the wall clock.
//
// Run from the project root: build/bench/bench_sft --shape tiny --dtype f32 [--help]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <torch/csrc/autograd/profiler_legacy.h>

#include "core/runtime.h"
#include "model/autocast.h"
#include "model/lora.h"
#include "model/model_init.h"
#include "train/lm_loss.h"
#include "train/optimizer.h"

namespace {

struct Options {
  std::string shape = "tiny";
  std::string dtype = "f32";
  int batch = 0;  // 0 = 4 for tiny, 1 for the 0.5B shape
  int seq = 256;
  int rank = 16;
  double alpha = 32;
  double scored = 1.0;
  int steps = 5;
  int warmup = 1;
  int threads = 0;
  bool checkpointing = false;
  std::string profile;  // chrome-trace file of the last step (LibTorch's profiler)
};

void usage() {
  std::printf(
      "bench_sft: tokens/s and peak memory of one LoRA SFT step (random weights)\n"
      "  --shape S          tiny | qwen2.5-0.5b-shape (default tiny)\n"
      "  --dtype D          f32 | bf16 | autocast (default f32)\n"
      "  --batch B          rows (default 4 for tiny, 1 for the 0.5B shape)\n"
      "  --seq T            tokens per row (default 256)\n"
      "  --rank R           LoRA rank (default 16; alpha 2R)\n"
      "  --scored F         fraction of each row that is scored (default 1: every position)\n"
      "  --steps N          timed steps (default 5)   --warmup W  untimed first steps (default 1)\n"
      "  --threads T        intra-op threads, 0 = all cores (default 0)\n"
      "  --checkpointing    activation checkpointing per decoder layer\n"
      "  --profile FILE     write LibTorch's per-op trace of one extra step (chrome://tracing JSON)\n");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_sft: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--shape") o.shape = value();
    else if (a == "--dtype") o.dtype = value();
    else if (a == "--batch") o.batch = std::stoi(value());
    else if (a == "--seq") o.seq = std::stoi(value());
    else if (a == "--rank") o.rank = std::stoi(value()), o.alpha = 2.0 * o.rank;
    else if (a == "--scored") o.scored = std::stod(value());
    else if (a == "--steps") o.steps = std::stoi(value());
    else if (a == "--warmup") o.warmup = std::stoi(value());
    else if (a == "--threads") o.threads = std::stoi(value());
    else if (a == "--checkpointing") o.checkpointing = true;
    else if (a == "--profile") o.profile = value();
    else if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    } else {
      std::fprintf(stderr, "bench_sft: unknown flag %s (see --help)\n", a.c_str());
      std::exit(2);
    }
  }
  if (o.dtype != "f32" && o.dtype != "bf16" && o.dtype != "autocast") {
    std::fprintf(stderr, "bench_sft: --dtype must be f32, bf16 or autocast\n");
    std::exit(2);
  }
  if (o.steps < 1 || o.seq < 2 || !(o.scored > 0 && o.scored <= 1)) {
    std::fprintf(stderr, "bench_sft: need --steps >= 1, --seq >= 2, 0 < --scored <= 1\n");
    std::exit(2);
  }
  if (o.batch == 0) o.batch = o.shape == "tiny" ? 4 : 1;
  return o;
}

// ids [B, T] and labels [B, T]: the next token at scored positions, -100 elsewhere (the first
// 1 - scored of each row, and the last position, which has no next token).
void make_batch(int64_t vocab, int B, int T, double scored, torch::Tensor& ids, torch::Tensor& labels) {
  auto gen = at::detail::createCPUGenerator(1);
  ids = torch::randint(0, vocab, {B, T}, gen, torch::kInt64);
  labels = torch::full({B, T}, -100, torch::kInt64);
  const int64_t first = std::min<int64_t>(static_cast<int64_t>(std::llround((1.0 - scored) * T)), T - 1);
  labels.narrow(1, first, T - 1 - first).copy_(ids.narrow(1, first + 1, T - 1 - first));
}

double peak_rss_mb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // kB on Linux
}

double cpu_seconds() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  lathe::prepare_process_environment(argc, argv);  // the lathe binary's thread environment
  const Options o = parse(argc, argv);
  lathe::configure_threads(o.threads);

  lathe::CausalLM model(lathe::preset_config(o.shape));
  lathe::init_random_weights(model, 0);
  if (o.dtype == "bf16") model->to(torch::kBFloat16);
  model->train();
  model->set_activation_checkpointing(o.checkpointing);
  lathe::LoraConfig lora;
  lora.r = o.rank;
  lora.alpha = o.alpha;
  lora.target_modules = lathe::lora_target_names();
  auto params = lathe::add_lora_adapter(model, "default", lora, 1);
  lathe::AdamWOptions adam;
  auto optimizer = lathe::make_adamw(params, adam);

  torch::Tensor ids, labels;
  make_batch(model->config().vocab_size, o.batch, o.seq, o.scored, ids, labels);
  const auto mask = torch::ones_like(ids);
  std::vector<double> seconds, cpu;
  double first_loss = 0, last_loss = 0;
  const int profiled = o.profile.empty() ? 0 : 1;
  for (int step = 0; step < o.warmup + o.steps + profiled; ++step) {
    const bool profiling = step == o.warmup + o.steps;
    std::optional<torch::autograd::profiler::RecordProfile> profile;
    if (profiling) profile.emplace(o.profile);
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_seconds();
    torch::Tensor loss;
    {
      std::optional<lathe::AutocastScope> autocast;
      if (o.dtype == "autocast") autocast.emplace(torch::Device(torch::kCPU), torch::kBFloat16);
      lathe::LmLoss l = lathe::causal_lm_loss(model, ids, mask, labels, /*count_correct=*/false);
      loss = l.loss_sum / static_cast<double>(l.tokens);
    }
    loss.backward();
    lathe::clip_grad_norm(params, 1.0);
    optimizer->step();
    optimizer->zero_grad();
    last_loss = loss.item<double>();
    if (step == 0) first_loss = last_loss;
    if (step >= o.warmup && !profiling) {
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      cpu.push_back(cpu_seconds() - cpu_start);
    }
  }
  const double tokens = static_cast<double>(o.batch) * o.seq;
  std::printf(
      "RESULT {\"impl\": \"lathe\", \"shape\": \"%s\", \"dtype\": \"%s\", \"batch\": %d, \"seq\": %d, \"rank\": %d, "
      "\"scored\": %g, \"threads\": %d, \"steps\": %d, \"checkpointing\": %s, \"tok_s_best\": %.2f, "
      "\"tok_s_median\": %.2f, \"cpu_s_median\": %.3f, \"peak_rss_mb\": %.1f, \"first_loss\": %.4f, "
      "\"last_loss\": %.4f}\n",
      o.shape.c_str(), o.dtype.c_str(), o.batch, o.seq, o.rank, o.scored, torch::get_num_threads(), o.steps,
      o.checkpointing ? "true" : "false", tokens / *std::min_element(seconds.begin(), seconds.end()),
      tokens / median(seconds), median(cpu), peak_rss_mb(), first_loss, last_loss);
  return 0;
}
