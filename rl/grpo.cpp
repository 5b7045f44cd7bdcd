// The GRPO recipe: Group Relative Policy Optimization of a LoRA adapter, as TRL's GRPOTrainer
// computes it (../shared/docs/INTEROP.md). Reads top to bottom: config keys -> setup (run
// folder, model, adapter, rewards, data, optimizer, resume) -> loop (rollout, old and
// reference log-probs, μ policy updates, metrics, rollouts.jsonl, checkpoint) -> save.
//
// Departures from TRL:
// * A step is one rollout batch: training.batch_size completions (batch_size / G prompts),
//   then num_iterations (μ) optimizer updates on it. TRL counts optimizer updates as steps;
//   with μ = 1 the two agree. training.max_steps counts rollout batches; the learning-rate
//   schedule runs over max_steps × μ updates.
// * The reference policy is the base model with the adapter switched off (no second copy); a
//   run with β > 0 therefore regularises toward the base, not toward a loaded SFT adapter.
// * Generation seeds derive from run.seed and the step, so a resumed run samples exactly what
//   the uninterrupted one would have.
// * Data-parallel (torchrun's environment, train/distributed.h), as TRL under DDP:
//   training.batch_size is per process (whole groups: a group never spans ranks); rank r
//   generates groups [r·B/G, (r+1)·B/G) of the step's prompts, group g sampling with the step
//   seed + g on any number of ranks. Rewards are gathered so advantages, metrics and
//   rollouts.jsonl cover the whole step (scale_rewards=batch spans every rank); the loss
//   normalisers are global — sequences (grpo, dr_grpo) and active tokens (dapo) over all
//   ranks — and the gradients summed, so N × b trains as 1 × N·b; bnpo stays per micro-batch,
//   which is TRL's per-device normalisation averaged over the devices (equal to one process
//   with training.micro_batch_size = b).
#include "rl/grpo.h"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "model/lora.h"
#include "model/model_io.h"
#include "rl/advantages.h"
#include "rl/endpoint_rollout.h"
#include "rl/grpo_loss.h"
#include "rl/rewards.h"
#include "rl/rollout.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/nonfinite_guard.h"
#include "train/optimizer.h"

namespace lathe {
namespace fs = std::filesystem;
using nlohmann::json;

const ConfigSchema& grpo_config_schema() {
  static const ConfigSchema schema = [] {
    ConfigSchema s;
    s.add_string("run.name", "grpo", "Run name; the run folder is runs/<name> unless run.dir is set.")
        .add_string("run.dir", "", "Run folder (empty = runs/<run.name>); `--run-dir` overrides it.")
        .add_int("run.seed", 42, "Seed for the adapter, dropout, data order and sampling.", 0)
        .add_string("model.path", "", "Hugging Face model folder: the base (and reference) model.")
        .add_string("model.dtype", "f32", "Base weight dtype (bf16 keeps LoRA weights in f32).", {"f32", "bf16"})
        .add_string("model.chat_template", "auto", "Chat format (auto = the model's own).",
                    {"auto", "plain", "chatml", "llama3", "llama2", "mistral"})
        .add_string("adapter.init", "new", "new: a fresh LoRA adapter (lora.*); load: start from adapter.path.",
                    {"new", "load"})
        .add_string("adapter.path", "", "PEFT adapter folder to start from (adapter.init=load), e.g. the SFT run's adapter/.")
        .add_int("lora.r", 8, "LoRA rank (adapter.init=new).", 1, 4096)
        .add_float("lora.alpha", 16.0, "LoRA alpha (adapter.init=new).", 0.0)
        .add_float("lora.dropout", 0.0, "Dropout on the LoRA input (adapter.init=new).", 0.0, 1.0)
        .add_string_list("lora.target_modules", {"q_proj", "v_proj"}, "Linears that get an adapter (adapter.init=new).",
                         {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
        .add_bool("lora.use_rslora", false, "Rank-stabilised scale alpha / sqrt(r) (adapter.init=new).")
        .add_string("data.train", "", "GRPO JSONL: {\"prompt\": [messages], ...columns the rewards read}.")
        .add_int("data.max_prompt_len", 1024, "Prompts longer than this (in tokens) are an error.", 1)
        .add_bool("data.shuffle", true, "Shuffle prompts each epoch (seeded).")
        .add_int("grpo.num_generations", 8, "G: completions per prompt (one group).", 2)
        .add_int("grpo.max_completion_length", 256, "Tokens generated per completion at most.", 1)
        .add_float("grpo.temperature", 1.0, "Sampling temperature.", 0.0)
        .add_float("grpo.top_p", 1.0, "Nucleus sampling (1 = off).", 0.0, 1.0)
        .add_int("grpo.top_k", 0, "Top-k sampling (0 = off).", 0)
        .add_float("grpo.beta", 0.0, "KL weight (k3 estimator to the base model); 0 skips the reference pass.", 0.0)
        .add_float("grpo.epsilon", 0.2, "Clip range below 1 (and above, unless epsilon_high is set).", 0.0, 1.0)
        .add_float("grpo.epsilon_high", 0.0, "Clip range above 1 (0 = grpo.epsilon).", 0.0)
        .add_string("grpo.loss_type", "dapo", "Aggregation of per-token losses.", {"grpo", "bnpo", "dr_grpo", "dapo"})
        .add_string("grpo.scale_rewards", "group", "Advantage divisor: group std, batch std or none.",
                    {"group", "batch", "none"})
        .add_int("grpo.num_iterations", 1, "μ: optimizer updates per rollout batch (old log-probs kept).", 1)
        .add_bool("grpo.mask_truncated_completions", false, "Leave completions without a stop token out of the loss.")
        .add_int("grpo.logprob_chunk", 1024, "Tokens per chunk when computing log-probs from hidden states.", 1)
        .add_string("rollout.endpoint", "",
                    "Sample rollouts from this vLLM-compatible server (base URL) instead of in-process; "
                    "the adapter is pushed to it before every rollout.")
        .add_string("rollout.api_key", "", "Bearer token for rollout.endpoint.")
        .add_string("rollout.adapter_name", "lathe-grpo", "Name the policy adapter is loaded under on rollout.endpoint.")
        .add_float("rollout.timeout", 600.0, "Seconds one rollout's completions may take on rollout.endpoint.", 1.0);
    const auto names = rl::reward_names();
    s.add_string_list("rewards.use", {"sql_execution", "xml_strict", "xml_count"},
                      "Reward functions summed (each times rewards.<name>.weight).", names);
    for (const auto& name : names) {
      const rl::RewardEntry& entry = rl::find_reward(name);
      s.add_float("rewards." + name + ".weight", 1.0, "Weight of " + name + ": " + entry.doc + ".");
      for (const auto& o : entry.options) {
        const std::string key = "rewards." + name + "." + o.key;
        if (o.default_value.is_boolean()) s.add_bool(key, o.default_value.get<bool>(), o.doc + ".");
        else if (o.default_value.is_number_integer()) s.add_int(key, o.default_value.get<int64_t>(), o.doc + ".");
        else if (o.default_value.is_number()) s.add_float(key, o.default_value.get<double>(), o.doc + ".");
        else s.add_string(key, o.default_value.get<std::string>(), o.doc + ".", o.choices);
      }
    }
    s.add_int("training.batch_size", 16, "Completions per step (a multiple of grpo.num_generations).", 2)
        .add_int("training.micro_batch_size", 0, "Sequences per forward/backward (0 = the whole batch).", 0)
        .add_int("training.max_steps", 100, "GRPO steps (rollout batches).", 1)
        .add_float("training.lr", 1e-5, "Peak learning rate.", 0.0)
        .add_string("training.schedule", "constant", "Learning-rate decay after warmup.", {"cosine", "linear", "constant"})
        .add_int("training.warmup_steps", 0, "Linear warmup, in optimizer updates.", 0)
        .add_float("training.min_lr_ratio", 0.0, "Final learning rate as a fraction of the peak.", 0.0, 1.0)
        .add_float("training.weight_decay", 0.0, "AdamW decoupled weight decay.", 0.0)
        .add_float("training.adam_beta1", 0.9, "AdamW beta1.", 0.0, 1.0)
        .add_float("training.adam_beta2", 0.999, "AdamW beta2.", 0.0, 1.0)
        .add_float("training.adam_eps", 1e-8, "AdamW epsilon.", 0.0)
        .add_float("training.max_grad_norm", 1.0, "Clip gradients to this global L2 norm (0 = no clipping).", 0.0)
        .add_int("training.max_nonfinite_steps", 3,
                 "Updates in a row with a NaN/Inf loss or gradient that are skipped (weights unchanged) before the "
                 "run stops with an error.", 1)
        .add_string("training.device", "cpu", "cpu, cuda or cuda:N.")
        .add_int("training.threads", 0, "CPU threads (0 = all cores).", 0)
        .add_int("checkpoint.every", 0, "Save a checkpoint every N steps (0 = only at the end or on a signal).", 0)
        .add_int("checkpoint.keep", 2, "Newest checkpoints kept.", 1)
        .add_int("log.every", 1, "Write a metrics line every N steps.", 1)
        .add_int("log.rollouts_every", 1, "Write every completion of every Nth step to rollouts.jsonl (0 = never).", 0);
    add_distributed_config_keys(s);
    return s;
  }();
  return schema;
}

namespace {

const char* kAdapter = "default";

std::atomic<int> g_stop_signal{0};
void on_stop_signal(int sig) { g_stop_signal.store(sig); }

// SIGINT/SIGTERM set a flag for the duration of a run; the previous handlers come back after.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal.store(0);
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

double peak_memory_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0.0;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Prompt order of one epoch: a seeded Fisher–Yates shuffle (splitmix64, identical everywhere).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  if (!shuffle) return order;
  uint64_t state = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(epoch) + 1));
  for (int64_t i = n - 1; i > 0; --i) {
    state = splitmix64(state);
    std::swap(order[i], order[state % static_cast<uint64_t>(i + 1)]);
  }
  return order;
}

// Copies a saved adapter's weights into the live adapter, so the optimizer keeps its tensors.
void copy_adapter_weights(CausalLM& model, const std::string& dir) {
  const std::string staging = "resume";
  load_peft_adapter(model, staging, dir);
  auto live = lora_parameters(model, kAdapter);
  auto saved = lora_parameters(model, staging);
  if (live.size() != saved.size()) fail(dir + ": adapter does not match the run's adapter");
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < live.size(); ++i) live[i].copy_(saved[i]);
  }
  remove_adapter(model, staging);
  set_active_adapters(model, {kAdapter});
}

}  // namespace

std::vector<rl::WeightedReward> make_configured_rewards(const Config& config) {
  std::vector<rl::WeightedReward> rewards;
  for (const auto& name : config.get_string_list("rewards.use")) {
    const rl::RewardEntry& entry = rl::find_reward(name);
    json options = json::object();
    for (const auto& o : entry.options) {
      const std::string key = "rewards." + name + "." + o.key;
      if (o.default_value.is_boolean()) options[o.key] = config.get_bool(key);
      else if (o.default_value.is_number_integer()) options[o.key] = config.get_int(key);
      else if (o.default_value.is_number()) options[o.key] = config.get_float(key);
      else options[o.key] = config.get_string(key);
    }
    rewards.push_back({name, config.get_float("rewards." + name + ".weight"), rl::make_reward(name, options)});
  }
  if (rewards.empty()) fail("rewards.use is empty: name at least one reward (" + std::to_string(rl::reward_names().size()) +
                            " registered, e.g. xml_count)");
  return rewards;
}

GrpoResult run_grpo(const Config& config, const GrpoRunOptions& options) {
  // ---- setup: config checks and run folder -------------------------------------------------
  GrpoResult result;
  // torchrun's environment, or a group of one (then every collective below is the identity).
  std::unique_ptr<Distributed> dist = init_distributed(config);
  const bool main_rank = dist->is_main();
  const bool quiet = options.quiet || !main_rank;
  if (!main_rank) log::set_level(log::Level::Warn);  // progress and notes come from rank 0
  const int64_t G = config.get_int("grpo.num_generations");
  const int64_t batch_size = config.get_int("training.batch_size");
  if (batch_size % G != 0)
    fail("training.batch_size=" + std::to_string(batch_size) + " is not a multiple of grpo.num_generations=" +
         std::to_string(G) + ": each prompt's G completions form one group; use a multiple of " + std::to_string(G));
  const int64_t prompts_per_step = batch_size / G;
  const int64_t micro_batch = config.get_int("training.micro_batch_size") > 0
                                  ? std::min(config.get_int("training.micro_batch_size"), batch_size)
                                  : batch_size;
  const int64_t mu = config.get_int("grpo.num_iterations");
  const int64_t max_steps = config.get_int("training.max_steps");
  if (config.get_string("model.path").empty()) fail("model.path is empty: set the base model folder");
  if (config.get_string("data.train").empty()) fail("data.train is empty: set the GRPO JSONL file");

  std::string run_dir = options.run_dir;
  if (run_dir.empty()) run_dir = config.get_string("run.dir");
  if (run_dir.empty()) run_dir = "runs/" + config.get_string("run.name");
  result.run_dir = run_dir;
  const uint64_t seed = static_cast<uint64_t>(config.get_int("run.seed"));
  std::optional<std::string> resume_from;
  if (options.resume) {
    resume_from = latest_checkpoint(run_dir);
    if (!resume_from) fail("--resume: no checkpoint in " + run_dir + "/checkpoints (start without --resume)");
    if (main_rank && fs::exists(run_dir + "/config.yaml")) {
      const Config saved = load_config(config.schema(), run_dir + "/config.yaml", {});
      for (const auto& key : saved.differences(config))
        log::warn("resume: " + key + " differs from the run's config.yaml (using the new value)");
    }
  } else if (latest_checkpoint(run_dir)) {
    fail(run_dir + " already holds checkpoints: pass --resume to continue it, or choose another run.dir");
  }
  const std::string metrics_path = run_dir + "/metrics.jsonl";
  const std::string rollouts_path = run_dir + "/rollouts.jsonl";
  if (main_rank) {
    fs::create_directories(run_dir);
    write_file_atomic(run_dir + "/config.yaml", config.to_yaml());
    if (!options.resume) {
      std::ofstream(metrics_path, std::ios::trunc);
      std::ofstream(rollouts_path, std::ios::trunc);
    }
  }

  const torch::Device device = dist->device();
  const torch::ScalarType dtype = parse_dtype(config.get_string("model.dtype"));
  configure_threads(dist->threads(static_cast<int>(config.get_int("training.threads"))));
  torch::manual_seed(seed);

  // ---- setup: model, adapter, rewards, data --------------------------------------------------
  const std::string template_name =
      config.get_string("model.chat_template") == "auto" ? "" : config.get_string("model.chat_template");
  LoadedModel loaded = load_model(config.get_string("model.path"), device, dtype, template_name);
  CausalLM model = loaded.model;
  const Tokenizer& tokenizer = *loaded.tokenizer;

  LoraConfig lora;
  std::vector<torch::Tensor> trainable;
  if (config.get_string("adapter.init") == "load") {
    if (config.get_string("adapter.path").empty()) fail("adapter.init=load needs adapter.path (a PEFT adapter folder)");
    lora = load_peft_adapter(model, kAdapter, config.get_string("adapter.path"));
    trainable = lora_parameters(model, kAdapter);
    for (auto& p : trainable) p.set_requires_grad(true);
  } else {
    lora.r = config.get_int("lora.r");
    lora.alpha = config.get_float("lora.alpha");
    lora.dropout = config.get_float("lora.dropout");
    lora.target_modules = config.get_string_list("lora.target_modules");
    lora.use_rslora = config.get_bool("lora.use_rslora");
    lora.base_model_name_or_path = config.get_string("model.path");
    trainable = add_lora_adapter(model, kAdapter, lora, seed);
  }
  // Whatever adapter the base folder arrived with, only ours is trained and active.
  set_active_adapters(model, {kAdapter});
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  for (auto& p : trainable) p.set_requires_grad(true);

  std::vector<rl::WeightedReward> rewards = make_configured_rewards(config);
  const std::vector<rl::PromptRow> prompts =
      rl::load_prompt_rows(config.get_string("data.train"), loaded.chat, tokenizer, config.get_int("data.max_prompt_len"));
  const bool shuffle = config.get_bool("data.shuffle");
  dist->check_same(static_cast<int64_t>(prompts.size()), "the number of prompts (" + config.get_string("data.train") + ")");

  rl::RolloutOptions rollout_options;
  rollout_options.num_generations = G;
  rollout_options.sampling.max_new_tokens = static_cast<int>(config.get_int("grpo.max_completion_length"));
  rollout_options.sampling.temperature = config.get_float("grpo.temperature");
  rollout_options.sampling.top_p = config.get_float("grpo.top_p");
  rollout_options.sampling.top_k = static_cast<int>(config.get_int("grpo.top_k"));
  rollout_options.scale_rewards = rl::scale_rewards_from_name(config.get_string("grpo.scale_rewards"));
  rollout_options.mask_truncated_completions = config.get_bool("grpo.mask_truncated_completions");

  std::optional<rl::EndpointSampler> endpoint;
  if (!config.get_string("rollout.endpoint").empty()) {
    rl::EndpointRolloutOptions e;
    e.endpoint = config.get_string("rollout.endpoint");
    e.api_key = config.get_string("rollout.api_key");
    e.adapter_name = config.get_string("rollout.adapter_name");
    e.timeout_seconds = config.get_float("rollout.timeout");
    endpoint.emplace(e, run_dir + "/rollout-adapter");
  }
  const rl::CompletionSampler sample = [&](const std::vector<GenerationRequest>& requests) {
    return endpoint ? endpoint->sample(requests, model->config().vocab_size) : generate(model, &tokenizer, requests);
  };

  rl::GrpoLossOptions loss_options;
  loss_options.beta = config.get_float("grpo.beta");
  loss_options.epsilon_low = config.get_float("grpo.epsilon");
  loss_options.epsilon_high =
      config.get_float("grpo.epsilon_high") > 0 ? config.get_float("grpo.epsilon_high") : loss_options.epsilon_low;
  loss_options.loss_type = rl::loss_type_from_name(config.get_string("grpo.loss_type"));
  loss_options.max_completion_length = config.get_int("grpo.max_completion_length");
  const int64_t chunk = config.get_int("grpo.logprob_chunk");

  // ---- setup: optimizer, schedule, resume ----------------------------------------------------
  AdamWOptions adam;
  adam.lr = config.get_float("training.lr");
  adam.beta1 = config.get_float("training.adam_beta1");
  adam.beta2 = config.get_float("training.adam_beta2");
  adam.eps = config.get_float("training.adam_eps");
  adam.weight_decay = config.get_float("training.weight_decay");
  auto optimizer = make_adamw(trainable, adam);
  LrSchedule schedule;
  schedule.lr = adam.lr;
  schedule.warmup_steps = config.get_int("training.warmup_steps");
  schedule.total_steps = max_steps * mu;
  schedule.kind = config.get_string("training.schedule");
  schedule.min_lr_ratio = config.get_float("training.min_lr_ratio");

  const auto save_adapter = [&](const std::string& dir) {
    fs::create_directories(dir);
    save_peft_adapter(model, kAdapter, lora, dir);
  };

  TrainState state;
  state.seed = seed;
  state.world_size = dist->world_size();
  if (resume_from) {
    copy_adapter_weights(model, *resume_from + "/adapter");
    torch::load(*optimizer, *resume_from + "/optimizer.pt");
    state = load_checkpoint_state(*resume_from);
    check_resume_world_size(state, dist->world_size(), *resume_from);
    dist->check_same(state.step, "the checkpoint step to resume from (every rank must see the same run folder)");
    if (state.seed != seed) log::warn("resume: run.seed differs from the checkpoint's; data order and samples will too");
    log::info("resuming from " + *resume_from + " (step " + std::to_string(state.step) + ")");
  }
  dist->broadcast_parameters(trainable, "initial adapter weights");  // identical starts, whatever each rank loaded
  int64_t trainable_count = 0;
  for (const auto& p : trainable) trainable_count += p.numel();
  log::info("grpo: " + std::to_string(prompts.size()) + " prompts, " + std::to_string(max_steps) + " steps of " +
            std::to_string(prompts_per_step * dist->world_size()) + " prompts x " + std::to_string(G) + " completions, mu " +
            std::to_string(mu) + ", " + std::to_string(trainable_count) + " trainable parameters, run folder " + run_dir);

  // ---- loop ----------------------------------------------------------------------------------
  StopSignals stop_signals;
  NonFiniteGuard nonfinite(config.get_int("training.max_nonfinite_steps"), "training.max_nonfinite_steps");
  const bool tty = !quiet && ::isatty(STDERR_FILENO);
  const int64_t log_every = config.get_int("log.every");
  const int64_t rollouts_every = config.get_int("log.rollouts_every");
  const int64_t checkpoint_every = config.get_int("checkpoint.every");
  const int64_t keep = config.get_int("checkpoint.keep");
  result.first_step = state.step + 1;
  auto order = epoch_order(static_cast<int64_t>(prompts.size()), seed, state.epoch, shuffle);
  bool warned_truncation = false;

  const auto save_state_checkpoint = [&] {
    if (main_rank)
      save_checkpoint(run_dir, state, keep, [&](const std::string& dir) {
        save_adapter(dir + "/adapter");
        torch::save(*optimizer, dir + "/optimizer.pt");
      });
    dist->barrier("checkpoint of step " + std::to_string(state.step));
  };

  while (state.step < max_steps) {
    const auto step_start = std::chrono::steady_clock::now();
    const std::string step_name = "step " + std::to_string(state.step + 1);
    seed_rank_stream(*dist, seed, state.step);
    // Prompts of this step over all ranks: the data cursor counts prompts, wrapping into
    // reshuffled epochs; this rank generates its contiguous share of the groups.
    std::vector<rl::PromptRow> step_prompts;
    std::vector<int64_t> step_rows;
    while (static_cast<int64_t>(step_prompts.size()) < prompts_per_step * dist->world_size()) {
      if (state.batch_in_epoch >= static_cast<int64_t>(order.size())) {
        ++state.epoch;
        state.batch_in_epoch = 0;
        order = epoch_order(static_cast<int64_t>(prompts.size()), seed, state.epoch, shuffle);
      }
      step_rows.push_back(order[state.batch_in_epoch++]);
      step_prompts.push_back(prompts[step_rows.back()]);
    }

    // Rollout: G completions per prompt, rewards, advantages (generation's KV cache is gone
    // when collect_rollout returns).
    model->eval();
    double publish_seconds = 0;
    if (endpoint) {  // rank 0 pushes the adapter; every rank then samples its groups from the server
      const auto t = std::chrono::steady_clock::now();
      if (main_rank) endpoint->publish(model, kAdapter, lora, state.step);
      dist->barrier(step_name + " adapter published");
      publish_seconds = seconds_since(t);
    }
    const int64_t first_group = dist->rank() * prompts_per_step;
    const std::vector<rl::PromptRow> my_prompts(step_prompts.begin() + first_group,
                                                step_prompts.begin() + first_group + prompts_per_step);
    rollout_options.seed = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(state.step) + 0x5eed)) + first_group;
    rl::Rollout rollout = rl::collect_rollout(sample, my_prompts, rewards, rollout_options);
    const int64_t N = rollout.size();
    // The whole step's rollout (every rank's groups): advantages, metrics, rollouts.jsonl.
    const rl::Rollout step_rollout =
        rl::gather_rollout(*dist, rollout, step_prompts, rollout_options, step_name + " rollouts");
    rollout.advantages.values.assign(step_rollout.advantages.values.begin() + first_group * G,
                                     step_rollout.advantages.values.begin() + first_group * G + N);
    auto advantages = torch::tensor(rollout.advantages.values, torch::kFloat64).to(torch::kFloat32);

    // Old log-probs (μ > 1: the rollout policy's, fixed across the μ updates) and the
    // reference's (β > 0: the base model, adapter off).
    auto t0 = std::chrono::steady_clock::now();
    std::vector<torch::Tensor> old_logp;
    if (mu > 1) old_logp = rl::rollout_logprobs(model, rollout, micro_batch, chunk);
    const double old_seconds = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    std::vector<torch::Tensor> ref_logp;
    if (loss_options.beta != 0.0) {
      AdaptersDisabled reference(model);
      ref_logp = rl::rollout_logprobs(model, rollout, micro_batch, chunk);
    }
    const double reference_seconds = seconds_since(t0);

    // μ policy updates on the same rollouts.
    t0 = std::chrono::steady_clock::now();
    std::vector<rl::PackedSequences> packed;
    std::vector<torch::Tensor> masks;
    rl::LossTotals totals;
    totals.sequences = step_rollout.size();
    for (int64_t begin = 0; begin < N; begin += micro_batch) {
      const int64_t n = std::min(micro_batch, N - begin);
      packed.push_back(rollout.pack(begin, n, device));
      masks.push_back(rollout.loss_mask(packed.back(), begin, rollout_options.mask_truncated_completions));
      totals.active_tokens += masks.back().sum().item<double>();
    }
    totals.active_tokens = dist->all_reduce({totals.active_tokens}, ReduceOp::Sum, step_name + " active tokens")[0];
    model->train();
    json iterations = json::array();
    double loss_sum = 0, kl_sum = 0, low = 0, high = 0, ratio = 0, tokens = 0, entropy_sum = 0, grad_norm = 0, lr = 0;
    for (int64_t it = 0; it < mu; ++it) {
      optimizer->zero_grad();
      double it_loss = 0, it_ratio = 0, it_tokens = 0, it_kl = 0, it_low = 0, it_high = 0, it_entropy = 0;
      for (size_t b = 0; b < packed.size(); ++b) {
        const int64_t begin = static_cast<int64_t>(b) * micro_batch;
        const int64_t n = packed[b].input_ids.size(0);
        rl::TokenLogProbs lp = rl::completion_logprobs(model, packed[b], chunk);
        const auto out = rl::grpo_loss(lp.logp, mu > 1 ? old_logp[b] : torch::Tensor(),
                                       loss_options.beta != 0.0 ? ref_logp[b] : torch::Tensor(),
                                       advantages.narrow(0, begin, n).to(device), masks[b], loss_options, totals);
        out.loss.backward();
        it_loss += out.loss.item<double>();
        it_ratio += out.ratio_sum;
        it_tokens += out.token_count;
        it_kl += out.kl_sum;
        it_low += out.low_clip_sum;
        it_high += out.high_clip_sum;
        it_entropy += (lp.entropy * masks[b]).sum().item<double>();
      }
      dist->all_reduce_gradients(trainable, step_name + " gradients");
      const auto sums = dist->all_reduce({it_loss, it_ratio, it_tokens, it_kl, it_low, it_high, it_entropy},
                                         ReduceOp::Sum, step_name + " loss");
      it_loss = sums[0], it_ratio = sums[1], it_tokens = sums[2];
      kl_sum += sums[3], low += sums[4], high += sums[5], entropy_sum += sums[6], tokens += it_tokens;
      grad_norm = clip_grad_norm(trainable, config.get_float("training.max_grad_norm"));
      lr = schedule.at(state.step * mu + it);
      if (nonfinite.accept(it_loss, grad_norm, step_name + (mu > 1 ? " update " + std::to_string(it + 1) : ""))) {
        set_learning_rate(*optimizer, lr);
        optimizer->step();
      }
      loss_sum += it_loss;
      ratio += it_ratio;
      iterations.push_back({{"loss", it_loss}, {"ratio_mean", it_ratio / std::max(it_tokens, 1.0)}});
    }
    const double policy_seconds = seconds_since(t0);
    ++state.step;
    state.tokens_seen += step_rollout.generated_tokens;
    // The slowest rank's times and memory, and whether any rank was asked to stop (they stop together).
    const int signal = g_stop_signal.load();
    const auto slowest = dist->all_reduce({old_seconds, reference_seconds, policy_seconds, peak_memory_mb(),
                                           signal != 0 ? 1.0 : 0.0},
                                          ReduceOp::Max, step_name + " times");

    // ---- metrics, rollouts.jsonl, progress (rank 0) ----
    json m = step_rollout.metrics();
    const double step_seconds = seconds_since(step_start);
    m["step"] = state.step;
    m["epoch"] = state.epoch;
    m["loss"] = loss_sum / static_cast<double>(mu);
    m["lr"] = lr;
    m["grad_norm"] = grad_norm;
    m["nonfinite_updates"] = nonfinite.skipped();
    m["kl"] = kl_sum / std::max(tokens, 1.0);
    m["entropy"] = entropy_sum / std::max(tokens, 1.0);
    m["clip_ratio/low_mean"] = low / std::max(tokens, 1.0);
    m["clip_ratio/high_mean"] = high / std::max(tokens, 1.0);
    m["clip_ratio/region_mean"] = (low + high) / std::max(tokens, 1.0);
    m["ratio_mean"] = ratio / std::max(tokens, 1.0);
    m["iterations"] = iterations;
    m["reference_passes"] = ref_logp.empty() ? 0 : 1;
    m["tokens_per_s"] = static_cast<double>(step_rollout.generated_tokens) / std::max(step_seconds, 1e-9);
    m["memory_mb"] = slowest[3];
    m["time/generation_s"] = step_rollout.generation_seconds;
    m["time/rewards_s"] = step_rollout.reward_seconds;
    if (endpoint) m["time/publish_s"] = publish_seconds;
    m["time/old_logprobs_s"] = slowest[0];
    m["time/reference_s"] = slowest[1];
    m["time/policy_s"] = slowest[2];
    m["time/step_s"] = step_seconds;
    result.step_metrics.push_back(m);
    if (main_rank && (state.step % log_every == 0 || state.step == max_steps)) append_jsonl(metrics_path, m);
    if (main_rank && rollouts_every > 0 && state.step % rollouts_every == 0) {
      for (int64_t i = 0; i < step_rollout.size(); ++i) {
        const json& row = step_prompts[i / G].row;
        json r{{"step", state.step}, {"group", i / G}, {"completion", step_rollout.completions[i]},
               {"finish_reason", step_rollout.finish_reasons[i]}, {"reward", step_rollout.rewards[i]},
               {"advantage", step_rollout.advantages.values[i]}};
        if (row.contains("id")) r["id"] = row["id"];
        r["prompt"] = row["prompt"].back().value("content", "");
        json per = json::object();
        for (size_t k = 0; k < step_rollout.reward_names.size(); ++k)
          per[step_rollout.reward_names[k]] = step_rollout.per_reward[k][i];
        r["rewards"] = per;
        append_jsonl(rollouts_path, r);
      }
    }
    const double clipped = m["completions/clipped_ratio"].get<double>();
    if (main_rank && clipped >= 0.9 && !warned_truncation) {
      log::warn("step " + std::to_string(state.step) + ": " + std::to_string(static_cast<int>(clipped * 100)) +
                "% of completions hit grpo.max_completion_length; raise it or expect truncated answers");
      warned_truncation = true;
    }
    if (!quiet) {
      char line[256];
      std::snprintf(line, sizeof line, "step %ld/%ld  reward %.3f (std %.3f)  loss %.4f  kl %.4f  len %.0f  gen %.1fs  policy %.1fs",
                    static_cast<long>(state.step), static_cast<long>(max_steps), m["reward"].get<double>(),
                    m["reward_std"].get<double>(), m["loss"].get<double>(), m["kl"].get<double>(),
                    m["completions/mean_length"].get<double>(), step_rollout.generation_seconds, slowest[2]);
      if (tty) std::fprintf(stderr, "\r\033[K%s%s", line, state.step == max_steps ? "\n" : "");
      else std::fprintf(stderr, "%s\n", line);
    }

    const bool stop = slowest[4] > 0 || (options.stop_after_steps >= 0 && state.step >= options.stop_after_steps);
    if (stop && state.step < max_steps) {
      if (tty) std::fprintf(stderr, "\n");
      save_state_checkpoint();
      log::info("stopped at step " + std::to_string(state.step) + "; checkpoint saved, continue with --resume");
      result.interrupted = true;
      result.signal = signal;
      result.steps = state.step;
      dist->shutdown();
      return result;
    }
    if (checkpoint_every > 0 && state.step % checkpoint_every == 0 && state.step < max_steps) save_state_checkpoint();
  }

  // ---- save ----------------------------------------------------------------------------------
  save_state_checkpoint();
  const std::string final_dir = run_dir + "/adapter";
  if (main_rank) {
    const std::string tmp = run_dir + "/.tmp-adapter-" + std::to_string(::getpid());
    fs::remove_all(tmp);
    save_adapter(tmp);
    replace_directory_atomic(tmp, final_dir);
  }
  dist->shutdown();
  log::info("grpo: done, " + std::to_string(state.step) + " steps; adapter in " + final_dir);
  result.steps = state.step;
  return result;
}

}  // namespace lathe
