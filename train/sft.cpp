// The SFT recipe: supervised fine-tuning on chat or prompt/completion JSONL, as full
// fine-tuning (every weight; also a model made from nothing: model.init=random) or LoRA.
// Reads top to bottom: config keys -> setup (run folder, tokenizer, model, data, optimizer,
// resume) -> loop (accumulate, clip, step, log, evaluate, checkpoint) -> save.
//
// Departures from TRL's SFTTrainer / torchtune's recipes:
// * The loss of a step is the sum of token losses over all its micro-batches divided by the
//   step's scored tokens (torchtune's normalisation), not a mean of per-batch means.
// * Two bf16 modes. training.autocast=bf16 is transformers' `bf16=True`: f32 weights (the
//   master copy the optimizer updates), forward matmuls in bf16 under autocast on CPU or CUDA
//   (model/autocast.h). model.dtype=bf16 instead stores the frozen base in bf16 (half the
//   memory) while LoRA weights stay f32; full fine-tuning with bf16 weights would update them
//   without f32 master copies, so it is an error.
// * Activation checkpointing (training.activation_checkpointing) is the reentrant kind, per
//   decoder layer, with the trainable parameters as inputs of the checkpoint, so PEFT's
//   enable_input_require_grads is never needed.
// * SIGINT/SIGTERM finish the current step, save a checkpoint and stop; the CLI then exits
//   with 128 + signal.
// * Data-parallel (torchrun's environment, train/distributed.h): training.batch_size is per
//   process; every rank plans the same global batches of batch_size × world_size rows and takes
//   its slice of each, and the loss is divided by the step's scored tokens over all ranks, so N
//   processes × batch b train exactly as one process × batch N·b. Only rank 0 writes the run
//   folder; the others wait at a barrier after each checkpoint.
#include "train/sft.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/runtime.h"
#include "model/autocast.h"
#include "model/bpe_trainer.h"
#include "model/fast_linear.h"
#include "model/model_init.h"
#include "model/model_io.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/lm_loss.h"
#include "train/nonfinite_guard.h"
#include "train/optimizer.h"
#include "train/sft_adapter.h"
#include "train/sft_data.h"

namespace lathe {
namespace fs = std::filesystem;

const ConfigSchema& sft_config_schema() {
  static const ConfigSchema schema = [] {
    ConfigSchema s;
    s.add_string("run.name", "sft", "Run name; the run folder is runs/<name> unless run.dir is set.")
        .add_string("run.dir", "", "Run folder (empty = runs/<run.name>); `--run-dir` overrides it.")
        .add_int("run.seed", 42, "Seed for initialisation, LoRA weights, dropout and data order.", 0)
        .add_string("model.init", "load", "Where the model comes from: a model folder, or random weights.",
                    {"load", "random"})
        .add_string("model.path", "", "Hugging Face model folder (model.init=load).")
        .add_string("model.preset", "tiny", "Shape preset for model.init=random.", {"tiny", "qwen2.5-0.5b-shape"})
        .add_int("model.hidden_size", 0, "model.init=random: hidden size (0 = the preset's).", 0)
        .add_int("model.intermediate_size", 0, "model.init=random: MLP size (0 = the preset's).", 0)
        .add_int("model.num_layers", 0, "model.init=random: decoder layers (0 = the preset's).", 0)
        .add_int("model.num_heads", 0, "model.init=random: attention heads (0 = the preset's).", 0)
        .add_int("model.num_kv_heads", 0, "model.init=random: key/value heads (0 = the preset's).", 0)
        .add_string("model.tie_word_embeddings", "preset",
                    "model.init=random: lm_head shares embed_tokens' weight (preset = the preset's choice).",
                    {"preset", "true", "false"})
        .add_string("model.dtype", "f32", "Weight dtype; bf16 stores the frozen base in bf16 (LoRA only; see training.autocast).",
                    {"f32", "bf16"})
        .add_string("model.chat_template", "auto", "Chat format (auto = the model's own).",
                    {"auto", "plain", "chatml", "llama3", "llama2", "mistral"})
        .add_string("tokenizer.path", "",
                    "model.init=random: a tokenizer folder to use (tokenizer.model or tokenizer.json, e.g. from "
                    "`lathe pipeline`'s tokenizer stage); empty = learn a BPE from data.train.")
        .add_int("tokenizer.num_merges", 400,
                 "model.init=random: BPE merges learned from data.train (vocab = 256 + merges + 3).", 0, 100000)
        .add_string("data.train", "", "Training JSONL (messages, or prompt/completion rows).")
        .add_string("data.validation", "", "Validation JSONL (empty = no evaluation).")
        .add_int("data.max_seq_len", 512, "Rows longer than this are truncated (and counted).", 2)
        .add_bool("data.train_on_prompt", false, "Score prompt tokens too (default: assistant tokens and EOS).")
        .add_bool("data.packing", false, "Concatenate rows up to max_seq_len (no cross-row attention mask).")
        .add_bool("data.shuffle", true, "Shuffle rows each epoch (seeded) and bucket batches by length.")
        .add_bool("lora.enabled", false, "Train a LoRA adapter instead of every weight.")
        .add_int("lora.r", 8, "LoRA rank.", 1, 4096)
        .add_float("lora.alpha", 16.0, "LoRA alpha (scale = alpha / r, or alpha / sqrt(r) with rslora).", 0.0)
        .add_float("lora.dropout", 0.0, "Dropout on the LoRA input.", 0.0, 1.0)
        .add_string_list("lora.target_modules", {"q_proj", "v_proj"}, "Linears that get an adapter.",
                         {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
        .add_int_list("lora.layers", {}, "Layer indices to adapt (empty = all).", 0)
        .add_bool("lora.use_rslora", false, "Rank-stabilised scale alpha / sqrt(r).")
        .add_string_list("lora.modules_to_save", {},
                         "Whole modules trained and saved beside the adapter (PEFT loads it; vLLM cannot).",
                         {"embed_tokens", "lm_head"})
        .add_int("training.batch_size", 4, "Rows per micro-batch.", 1)
        .add_int("training.grad_accum", 1, "Micro-batches per optimizer step.", 1)
        .add_int("training.epochs", 1, "Epochs to run when training.max_steps is 0.", 1)
        .add_int("training.max_steps", 0, "Optimizer steps (0 = training.epochs over the data).", 0)
        .add_float("training.lr", 2e-4, "Peak learning rate.", 0.0)
        .add_string("training.schedule", "cosine", "Learning-rate decay after warmup.", {"cosine", "linear", "constant"})
        .add_int("training.warmup_steps", 0, "Linear warmup steps from 0.", 0)
        .add_float("training.min_lr_ratio", 0.0, "Final learning rate as a fraction of the peak.", 0.0, 1.0)
        .add_float("training.weight_decay", 0.0, "AdamW decoupled weight decay.", 0.0)
        .add_float("training.adam_beta1", 0.9, "AdamW beta1.", 0.0, 1.0)
        .add_float("training.adam_beta2", 0.999, "AdamW beta2.", 0.0, 1.0)
        .add_float("training.adam_eps", 1e-8, "AdamW epsilon.", 0.0)
        .add_float("training.max_grad_norm", 1.0, "Clip gradients to this global L2 norm (0 = no clipping).", 0.0)
        .add_int("training.max_nonfinite_steps", 3,
                 "Steps in a row with a NaN/Inf loss or gradient that are skipped (weights unchanged) before the run "
                 "stops with an error.", 1)
        .add_string("training.autocast", "none",
                    "Mixed precision: bf16 runs forward matmuls in bf16 under autocast, weights stay in model.dtype; "
                    "auto is bf16 where bf16 matmuls are native (CUDA, a CPU with avx512_bf16 or AMX), none elsewhere.",
                    {"none", "bf16", "auto"})
        .add_bool("training.activation_checkpointing", false,
                  "Recompute each decoder layer's activations in backward (less memory, ~1/3 more compute).")
        .add_bool("training.shared_prefix", true,
                  "Run the tokens every row of a batch begins with (the system prompt) once per batch, not once "
                  "per row: same loss and gradients up to rounding, less compute (not under activation checkpointing).")
        .add_string("training.device", "cpu", "cpu, cuda or cuda:N.")
        .add_int("training.threads", 0, "CPU threads (0 = all cores).", 0)
        .add_int("eval.every", 0, "Evaluate on data.validation every N steps (0 = only at the end).", 0)
        .add_int("eval.batch_size", 8, "Rows per evaluation batch.", 1)
        .add_int("checkpoint.every", 0, "Save a checkpoint every N steps (0 = only at the end or on a signal).", 0)
        .add_int("checkpoint.keep", 2, "Newest checkpoints kept.", 1)
        .add_int("log.every", 1, "Write a metrics line every N steps.", 1);
    add_distributed_config_keys(s);
    return s;
  }();
  return schema;
}

namespace {

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

double resident_memory_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // peak, kB
  return 0.0;
}

// Tokenizer files a model folder needs next to its weights.
void copy_tokenizer_files(const std::string& from, const std::string& to) {
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                           "generation_config.json"}) {
    const fs::path src = fs::path(from) / name;
    if (fs::exists(src)) fs::copy_file(src, fs::path(to) / name, fs::copy_options::overwrite_existing);
  }
}

struct EvalResult {
  double loss = 0, accuracy = 0;
};

}  // namespace

bool autocast_enabled(const std::string& mode, torch::Device device) {
  if (mode == "auto") return device_has_native_bf16_matmul(device);
  return mode == "bf16";
}

namespace {

// The forward of a training or evaluation batch, under autocast when the run asks for it.
LmLoss batch_loss(CausalLM& model, const SftBatch& batch, bool autocast, bool count_correct, bool share_prefix) {
  std::optional<AutocastScope> scope;
  if (autocast) scope.emplace(model->device(), torch::kBFloat16);
  return causal_lm_loss(model, batch.input_ids, batch.attention_mask, batch.labels, count_correct, share_prefix);
}

// Each rank scores every world_size-th batch; the sums are reduced over the ranks.
EvalResult evaluate(CausalLM& model, const std::vector<SftRow>& rows, int64_t batch_size, int32_t pad_id,
                    bool autocast, bool share_prefix, Distributed& dist) {
  torch::NoGradGuard no_grad;
  model->eval();
  double loss = 0;
  int64_t tokens = 0, correct = 0;
  const auto batches = plan_epoch(rows, batch_size, 0, 0, false);
  for (size_t i = dist.rank(); i < batches.size(); i += dist.world_size()) {
    SftBatch batch = collate(rows, batches[i], pad_id);
    LmLoss l = batch_loss(model, batch, autocast, /*count_correct=*/true, share_prefix);
    loss += l.loss_sum.item<double>();
    tokens += l.tokens;
    correct += l.correct;
  }
  model->train();
  const auto sums = dist.all_reduce({loss, static_cast<double>(tokens), static_cast<double>(correct)},
                                    ReduceOp::Sum, "evaluation");
  return {sums[0] / std::max(sums[1], 1.0), sums[2] / std::max(sums[1], 1.0)};
}

bool file_exists(const std::string& path) { return fs::is_regular_file(path); }

// The model shape model.init=random builds: the preset with the config's overrides.
ModelConfig random_model_shape(const Config& config) {
  ModelConfig mc = preset_config(config.get_string("model.preset"));
  const auto size = [&](const char* key, int64_t& field) {
    if (config.get_int(key) > 0) field = config.get_int(key);
  };
  size("model.hidden_size", mc.hidden_size);
  size("model.intermediate_size", mc.intermediate_size);
  size("model.num_layers", mc.num_hidden_layers);
  size("model.num_heads", mc.num_attention_heads);
  size("model.num_kv_heads", mc.num_key_value_heads);
  if (config.get_string("model.tie_word_embeddings") != "preset")
    mc.tie_word_embeddings = config.get_string("model.tie_word_embeddings") == "true";
  if (mc.hidden_size % mc.num_attention_heads != 0)
    fail("model.hidden_size=" + std::to_string(mc.hidden_size) + " must divide by model.num_heads=" +
         std::to_string(mc.num_attention_heads));
  if (mc.num_attention_heads % mc.num_key_value_heads != 0)
    fail("model.num_heads=" + std::to_string(mc.num_attention_heads) + " must divide by model.num_kv_heads=" +
         std::to_string(mc.num_key_value_heads));
  mc.head_dim = mc.hidden_size / mc.num_attention_heads;
  if (mc.head_dim % 2 != 0)
    fail("model.hidden_size / model.num_heads = " + std::to_string(mc.head_dim) + " must be even (RoPE rotates pairs)");
  mc.max_position_embeddings = std::max<int64_t>(mc.max_position_embeddings, config.get_int("data.max_seq_len"));
  return mc;
}

// Checks that need more than one key (or the file system), before any file is written. Each
// error names the key to change; keys that a setting makes irrelevant are logged.
void validate_sft_config(const Config& config) {
  const std::string train = config.get_string("data.train");
  if (train.empty()) fail("data.train is empty: set the training JSONL file");
  if (!file_exists(train)) fail("data.train: " + train + " does not exist");
  const std::string validation = config.get_string("data.validation");
  if (!validation.empty() && !file_exists(validation)) fail("data.validation: " + validation + " does not exist");
  if (config.get_int("eval.every") > 0 && validation.empty())
    fail("eval.every=" + std::to_string(config.get_int("eval.every")) + " needs data.validation (a JSONL file)");
  const bool use_lora = config.get_bool("lora.enabled");
  try {
    parse_device(config.get_string("training.device"));
  } catch (const Error& e) {
    fail(std::string("training.device: ") + e.what());
  }
  if (config.get_string("model.dtype") != "f32" && !use_lora)
    fail("model.dtype=bf16 with full fine-tuning would update bf16 weights without f32 master copies; use "
         "model.dtype=f32 (with training.autocast=bf16 for bf16 compute) or lora.enabled=true");
  if (config.get_float("lora.dropout") >= 1.0) fail("lora.dropout must be below 1 (1 drops every input)");
  for (const char* key : {"training.adam_beta1", "training.adam_beta2"})
    if (config.get_float(key) >= 1.0) fail(std::string(key) + " must be below 1");

  int64_t layers = 0;
  bool tied = false;
  if (config.get_string("model.init") == "load") {
    const std::string path = config.get_string("model.path");
    if (path.empty()) fail("model.path is empty: model.init=load needs a model folder (or set model.init=random)");
    if (!fs::is_directory(path)) fail("model.path: " + path + " is not a folder");
    const ModelConfig mc = ModelConfig::load(path);
    layers = mc.num_hidden_layers;
    tied = mc.tie_word_embeddings;
    for (const char* key : {"model.hidden_size", "model.intermediate_size", "model.num_layers", "model.num_heads",
                            "model.num_kv_heads", "model.tie_word_embeddings", "tokenizer.num_merges",
                            "model.preset"})
      if (config.origin(key) != "default") log::warn(std::string(key) + " is ignored with model.init=load");
  } else {
    const ModelConfig mc = random_model_shape(config);
    layers = mc.num_hidden_layers;
    tied = mc.tie_word_embeddings;
    if (!config.get_string("model.path").empty()) log::warn("model.path is ignored with model.init=random");
  }
  if (use_lora) {
    if (config.get_string_list("lora.target_modules").empty())
      fail("lora.target_modules is empty; list the linears to adapt (q_proj, k_proj, v_proj, o_proj, gate_proj, "
           "up_proj, down_proj)");
    for (int64_t layer : config.get_int_list("lora.layers"))
      if (layer >= layers)
        fail("lora.layers has layer " + std::to_string(layer) + " but the model has " + std::to_string(layers) +
             " layers (0.." + std::to_string(layers - 1) + ")");
    const auto& modules = config.get_string_list("lora.modules_to_save");
    if (!modules.empty() && config.get_string("model.dtype") != "f32")
      fail("lora.modules_to_save trains whole weights, which model.dtype=bf16 would update without f32 master "
           "copies; use model.dtype=f32 (with training.autocast=bf16 for bf16 compute)");
    if (tied && std::find(modules.begin(), modules.end(), "lm_head") != modules.end())
      fail("lora.modules_to_save has lm_head, but the model ties lm_head to embed_tokens; list embed_tokens");
  } else {
    for (const auto& key : config.schema().keys())
      if (key.key.rfind("lora.", 0) == 0 && key.key != "lora.enabled" && config.origin(key.key) != "default")
        log::warn(key.key + " is ignored: lora.enabled is false (full fine-tuning)");
  }
}

}  // namespace

SftResult run_sft(const Config& config, const SftRunOptions& requested) {
  validate_sft_config(config);
  // ---- setup: run folder --------------------------------------------------------------------
  SftResult result;
  // torchrun's environment, or a group of one (then every collective below is the identity).
  std::unique_ptr<Distributed> dist = init_distributed(config);
  const bool main_rank = dist->is_main();
  SftRunOptions options = requested;
  options.quiet = options.quiet || !main_rank;
  if (!main_rank) log::set_level(log::Level::Warn);  // progress and notes come from rank 0
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
  if (main_rank) {
    fs::create_directories(run_dir);
    write_file_atomic(run_dir + "/config.yaml", config.to_yaml());
    if (!options.resume) std::ofstream(metrics_path, std::ios::trunc);
  }

  const torch::Device device = dist->device();
  const torch::ScalarType dtype = parse_dtype(config.get_string("model.dtype"));
  const bool use_lora = config.get_bool("lora.enabled");
  const std::string autocast_mode = config.get_string("training.autocast");
  const bool autocast = autocast_enabled(autocast_mode, device);
  if (autocast_mode == "auto")
    log::info(std::string("training.autocast=auto: ") + (autocast ? "bf16" : "none (no native bf16 matmul here)"));
  configure_threads(dist->threads(static_cast<int>(config.get_int("training.threads"))));
  torch::manual_seed(seed);

  // ---- setup: tokenizer and model ------------------------------------------------------------
  std::unique_ptr<Tokenizer> tokenizer;
  ChatTemplate chat;
  CausalLM model{nullptr};
  std::string tokenizer_dir;  // where the final model folder copies its tokenizer files from
  const std::string template_name =
      config.get_string("model.chat_template") == "auto" ? "" : config.get_string("model.chat_template");
  if (config.get_string("model.init") == "load") {
    LoadedModel loaded = load_model(config.get_string("model.path"), device, dtype, template_name);
    tokenizer = std::move(loaded.tokenizer);
    chat = loaded.chat;
    model = loaded.model;
    tokenizer_dir = loaded.dir;
  } else {
    // A model from nothing: the given tokenizer, or a byte-level BPE learned from the
    // training text, copied into the run's own tokenizer/ folder (read back on resume, so ids
    // never change), and seeded random weights.
    tokenizer_dir = run_dir + "/tokenizer";
    const std::string given = config.get_string("tokenizer.path");
    if (!given.empty() && !fs::exists(given + "/tokenizer.model") && !fs::exists(given + "/tokenizer.json"))
      fail("tokenizer.path: " + given + " holds neither tokenizer.model nor tokenizer.json");
    if (main_rank && !given.empty() && !fs::exists(tokenizer_dir)) {
      const std::string tmp = run_dir + "/.tmp-tokenizer-" + std::to_string(::getpid());
      fs::remove_all(tmp);
      fs::create_directories(tmp);
      copy_tokenizer_files(given, tmp);
      replace_directory_atomic(tmp, tokenizer_dir);
    } else if (main_rank && given.empty() && !fs::exists(tokenizer_dir + "/tokenizer.json")) {
      BpeTrainOptions bpe;
      bpe.num_merges = static_cast<int>(config.get_int("tokenizer.num_merges"));
      ChatTemplate plain;
      plain.format = template_name.empty() ? ChatFormat::Plain : chat_format_from_name(template_name);
      plain.eos_text = bpe.special_tokens.back();
      BpeModelSpec spec = train_bpe(sft_corpus_text(config.get_string("data.train"), plain, plain.eos_text), bpe);
      // Written whole or not at all: a run killed mid-write must not leave a torn tokenizer
      // that the resumed run would load.
      const std::string tmp = run_dir + "/.tmp-tokenizer-" + std::to_string(::getpid());
      fs::remove_all(tmp);
      fs::create_directories(tmp);
      save_bpe_model(spec, tmp);
      replace_directory_atomic(tmp, tokenizer_dir);
    }
    dist->barrier("tokenizer written");  // the other ranks read rank 0's
    tokenizer = load_tokenizer(tokenizer_dir);
    chat = load_chat_template(tokenizer_dir, tokenizer->eos_text(), tokenizer->bos_text(), template_name);
    ModelConfig mc = random_model_shape(config);
    mc.vocab_size = tokenizer->vocab_size();
    mc.bos_token_id.reset();
    if (tokenizer->bos_id()) mc.bos_token_id = *tokenizer->bos_id();
    mc.eos_token_ids.clear();
    if (tokenizer->eos_id()) mc.eos_token_ids = {*tokenizer->eos_id()};
    model = CausalLM(mc);
    init_random_weights(model, seed);
    model->to(device, dtype);
  }
  model->train();
  model->set_activation_checkpointing(config.get_bool("training.activation_checkpointing"));
  const bool share_prefix = config.get_bool("training.shared_prefix");
  const int32_t pad_id = tokenizer->pad_id().value_or(tokenizer->eos_id().value_or(0));

  std::vector<torch::Tensor> trainable;
  if (use_lora) {
    trainable = add_sft_adapter(model, config, seed);
    if (!config.get_string_list("lora.modules_to_save").empty())
      log::warn("lora.modules_to_save trains whole modules: the adapter will carry their full weights, which PEFT "
                "loads but vLLM cannot (it takes only lora_A/lora_B of the linear layers); serve the model that "
                "`lathe merge` makes from it");
  } else {
    for (auto& p : model->parameters()) {
      p.set_requires_grad(true);
      trainable.push_back(p);
    }
  }
  int64_t trainable_count = 0;
  for (const auto& p : trainable) trainable_count += p.numel();

  // ---- setup: data ---------------------------------------------------------------------------
  SftDataOptions data_options;
  data_options.max_seq_len = config.get_int("data.max_seq_len");
  data_options.train_on_prompt = config.get_bool("data.train_on_prompt");
  data_options.add_bos = tokenizer->add_bos_token();
  SftDataset train_data = load_sft_dataset(config.get_string("data.train"), *tokenizer, chat, data_options);
  if (train_data.truncated > 0)
    log::warn(std::to_string(train_data.truncated) + " of " + std::to_string(train_data.rows.size()) +
              " training rows were truncated to data.max_seq_len=" + std::to_string(data_options.max_seq_len));
  std::vector<SftRow> rows = config.get_bool("data.packing") ? pack_rows(train_data.rows, data_options.max_seq_len)
                                                             : train_data.rows;
  dist->check_same(static_cast<int64_t>(rows.size()), "the number of training rows (" + config.get_string("data.train") + ")");
  std::vector<SftRow> validation_rows;
  if (!config.get_string("data.validation").empty())
    validation_rows = load_sft_dataset(config.get_string("data.validation"), *tokenizer, chat, data_options).rows;

  const int64_t batch_size = config.get_int("training.batch_size");
  const int64_t grad_accum = config.get_int("training.grad_accum");
  const bool shuffle = config.get_bool("data.shuffle");
  const int64_t global_batch = batch_size * dist->world_size();  // rows per micro-batch over all ranks
  const int64_t batches_per_epoch = (static_cast<int64_t>(rows.size()) + global_batch - 1) / global_batch;
  const int64_t total_steps = config.get_int("training.max_steps") > 0
                                  ? config.get_int("training.max_steps")
                                  : config.get_int("training.epochs") * ((batches_per_epoch + grad_accum - 1) / grad_accum);

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
  schedule.total_steps = total_steps;
  schedule.kind = config.get_string("training.schedule");
  schedule.min_lr_ratio = config.get_float("training.min_lr_ratio");

  const auto save_weights = [&](const std::string& dir) {
    if (use_lora) {
      save_sft_adapter(model, config, dir);
    } else {
      fs::create_directories(dir);
      save_model(model, dir, torch::kFloat32);
      copy_tokenizer_files(tokenizer_dir, dir);
    }
  };
  const std::string weights_name = use_lora ? "adapter" : "model";

  TrainState state;
  state.seed = seed;
  state.world_size = dist->world_size();
  if (resume_from) {
    // Weights, optimizer moments, schedule position, data cursor and RNG: everything the next
    // step depends on, so the continued run repeats the uninterrupted one exactly.
    if (use_lora) load_sft_adapter(model, *resume_from + "/adapter");
    else load_weights(model, *resume_from + "/model");
    torch::load(*optimizer, *resume_from + "/optimizer.pt");
    state = load_checkpoint_state(*resume_from);
    check_resume_world_size(state, dist->world_size(), *resume_from);
    dist->check_same(state.step, "the checkpoint step to resume from (every rank must see the same run folder)");
    if (state.seed != seed) log::warn("resume: run.seed differs from the checkpoint's; the data order will too");
    log::info("resuming from " + *resume_from + " (step " + std::to_string(state.step) + ")");
  }
  dist->broadcast_parameters(trainable, "initial weights");  // identical starts, whatever each rank loaded

  log::info("sft: " + std::to_string(train_data.rows.size()) + " rows (" + std::to_string(train_data.target_tokens) +
            " target tokens), " + std::to_string(total_steps) + " steps, " + std::to_string(trainable_count) +
            " trainable parameters (" + (use_lora ? "LoRA" : "full fine-tuning") + "), run folder " + run_dir);

  // ---- loop ----------------------------------------------------------------------------------
  StopSignals stop_signals;
  Progress progress(total_steps, !options.quiet, ::isatty(STDERR_FILENO));
  NonFiniteGuard nonfinite(config.get_int("training.max_nonfinite_steps"), "training.max_nonfinite_steps");
  const int64_t log_every = config.get_int("log.every");
  const int64_t eval_every = config.get_int("eval.every");
  const int64_t checkpoint_every = config.get_int("checkpoint.every");
  const int64_t keep = config.get_int("checkpoint.keep");
  const auto start_time = std::chrono::steady_clock::now();
  const int64_t start_step = state.step;
  result.first_step = state.step + 1;
  auto plan = plan_epoch(rows, global_batch, seed, state.epoch, shuffle);

  const auto save_state_checkpoint = [&] {
    if (main_rank)
      save_checkpoint(run_dir, state, keep, [&](const std::string& dir) {
        save_weights(dir + "/" + weights_name);
        torch::save(*optimizer, dir + "/optimizer.pt");
      });
    dist->barrier("checkpoint of step " + std::to_string(state.step));
  };
  const auto run_eval = [&] {
    if (validation_rows.empty()) return;
    EvalResult e = evaluate(model, validation_rows, config.get_int("eval.batch_size"), pad_id, autocast, share_prefix,
                            *dist);
    result.eval_loss = e.loss;
    result.eval_accuracy = e.accuracy;
    if (!main_rank) return;
    append_jsonl(metrics_path, {{"step", state.step}, {"eval_loss", e.loss}, {"eval_token_accuracy", e.accuracy}});
    progress.break_line();
    if (!options.quiet)
      log::info("eval step " + std::to_string(state.step) + ": loss " + std::to_string(e.loss) + ", token accuracy " +
                std::to_string(e.accuracy));
    if (!state.has_best || e.loss < state.best_eval_loss) {
      state.has_best = true;
      state.best_eval_loss = e.loss;
      const std::string tmp = run_dir + "/.tmp-best-" + std::to_string(::getpid());
      fs::remove_all(tmp);
      save_weights(tmp);
      replace_directory_atomic(tmp, run_dir + "/best");
    }
  };

  while (state.step < total_steps) {
    const auto step_start = std::chrono::steady_clock::now();
    const std::string step_name = "step " + std::to_string(state.step + 1);
    seed_rank_stream(*dist, seed, state.step);
    std::vector<SftBatch> micro;
    for (int64_t i = 0; i < grad_accum; ++i) {
      if (state.batch_in_epoch >= static_cast<int64_t>(plan.size())) {
        ++state.epoch;
        state.batch_in_epoch = 0;
        plan = plan_epoch(rows, global_batch, seed, state.epoch, shuffle);
      }
      const std::vector<int64_t>& global = plan[state.batch_in_epoch++];
      const auto [begin, end] = shard_range(static_cast<int64_t>(global.size()), dist->rank(), dist->world_size());
      micro.push_back(collate(rows, std::vector<int64_t>(global.begin() + begin, global.begin() + end), pad_id));
    }
    int64_t step_targets = 0, step_tokens = 0;
    for (const auto& b : micro) step_targets += b.target_tokens, step_tokens += b.tokens;
    // Over every rank: the loss is normalised by the global batch's scored tokens.
    const auto counts = dist->all_reduce({static_cast<double>(step_targets), static_cast<double>(step_tokens)},
                                         ReduceOp::Sum, step_name + " token counts");
    step_targets = static_cast<int64_t>(counts[0]);
    step_tokens = static_cast<int64_t>(counts[1]);

    optimizer->zero_grad();
    double step_loss = 0;
    for (const auto& b : micro) {
      if (b.input_ids.size(0) == 0) continue;  // this rank's share of a short last batch is empty
      LmLoss l = batch_loss(model, b, autocast, /*count_correct=*/false, share_prefix);
      auto loss = l.loss_sum / static_cast<double>(step_targets);
      loss.backward();
      step_loss += loss.item<double>();
    }
    dist->all_reduce_gradients(trainable, step_name + " gradients");
    const double grad_norm = clip_grad_norm(trainable, config.get_float("training.max_grad_norm"));
    const double lr = schedule.at(state.step);
    // The step's loss over all ranks, and whether any rank was asked to stop (they stop together).
    const int signal = g_stop_signal.load();
    const auto sums = dist->all_reduce({step_loss, signal != 0 ? 1.0 : 0.0}, ReduceOp::Sum, step_name + " loss");
    step_loss = sums[0];
    // Every rank sees the same reduced loss and gradient norm, so they skip together.
    if (nonfinite.accept(step_loss, grad_norm, step_name)) {
      set_learning_rate(*optimizer, lr);
      optimizer->step();
    }
    ++state.step;
    state.tokens_seen += step_tokens;
    result.losses.push_back(step_loss);

    const auto now = std::chrono::steady_clock::now();
    const double step_s = std::chrono::duration<double>(now - step_start).count();
    const double elapsed = std::chrono::duration<double>(now - start_time).count();
    const double eta = elapsed / static_cast<double>(state.step - start_step) * static_cast<double>(total_steps - state.step);
    const double tokens_per_s = step_tokens / std::max(step_s, 1e-9);
    const bool log_step = state.step % log_every == 0 || state.step == total_steps;
    if (main_rank && log_step)
      append_jsonl(metrics_path, {{"step", state.step}, {"epoch", state.epoch}, {"loss", step_loss}, {"lr", lr},
                                  {"grad_norm", grad_norm}, {"tokens", step_tokens}, {"target_tokens", step_targets},
                                  {"tokens_per_s", tokens_per_s}, {"memory_mb", resident_memory_mb()},
                                  {"nonfinite_steps", nonfinite.skipped()}, {"elapsed_s", elapsed}});
    char fields[160];
    std::snprintf(fields, sizeof fields, "loss %.4f  lr %.2e  grad_norm %.3f  %.0f tok/s", step_loss, lr, grad_norm,
                  tokens_per_s);
    progress.update(state.step, fields, eta, log_step);  // quiet on ranks other than 0
    if (eval_every > 0 && state.step % eval_every == 0 && state.step < total_steps) run_eval();
    const bool stop = sums[1] > 0 || (options.stop_after_steps >= 0 && state.step >= options.stop_after_steps);
    if (stop && state.step < total_steps) {
      progress.break_line();
      save_state_checkpoint();
      log::info("stopped at step " + std::to_string(state.step) + "; checkpoint saved, continue with --resume");
      result.interrupted = true;
      result.signal = signal;
      result.steps = state.step;
      dist->shutdown();
      return result;
    }
    if (checkpoint_every > 0 && state.step % checkpoint_every == 0 && state.step < total_steps)
      save_state_checkpoint();
  }

  // ---- save ----------------------------------------------------------------------------------
  run_eval();
  save_state_checkpoint();
  const std::string final_dir = run_dir + "/" + weights_name;
  if (main_rank) {
    const std::string tmp = run_dir + "/.tmp-" + weights_name + "-" + std::to_string(::getpid());
    fs::remove_all(tmp);
    save_weights(tmp);
    replace_directory_atomic(tmp, final_dir);
  }
  dist->shutdown();
  log::info("sft: done, " + std::to_string(state.step) + " steps; " + (use_lora ? "adapter" : "model") + " in " +
            final_dir);
  if (use_lora && !config.get_string_list("lora.modules_to_save").empty())
    log::warn(final_dir + " carries whole modules (lora.modules_to_save): vLLM cannot load it; run `lathe merge --model "
              "BASE --adapter " + final_dir + " --out DIR` and serve DIR");
  result.steps = state.step;
  return result;
}

}  // namespace lathe
