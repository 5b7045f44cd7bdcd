#include "serve/scheduler.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <future>

#include "core/error.h"
#include "core/log.h"
#include "model/lora.h"

namespace lathe::serve {

namespace fs = std::filesystem;

namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string join_names(const std::map<std::string, std::string>& names) {
  std::string out;
  for (const auto& [name, _] : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

Job::Job(std::vector<GenerationRequest> prompts, std::string adapter)
    : prompts_(std::move(prompts)), adapter_(std::move(adapter)) {
  for (const auto& p : prompts_) choices_ += static_cast<size_t>(std::max(p.params.n, 1));
}

void Job::push(JobEvent event) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (event.finished) ++finished_choices_;
    events_.push_back(std::move(event));
  }
  cv_.notify_all();
}

void Job::fail(const ApiError& error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = error;
  }
  cv_.notify_all();
}

bool Job::all_finished() const { return finished_choices_ >= choices_; }

bool Job::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_.empty() && (all_finished() || error_);
}

std::optional<JobEvent> Job::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return !events_.empty() || error_ || all_finished(); });
  if (!events_.empty()) {
    JobEvent e = std::move(events_.front());
    events_.pop_front();
    return e;
  }
  if (error_) throw *error_;
  return std::nullopt;
}

// Turns one prompt's decoder events into job events and metrics (engine thread).
class JobListener : public DecodeListener {
 public:
  JobListener(std::shared_ptr<Job> job, size_t first_choice, int n, Metrics& metrics)
      : job_(std::move(job)), first_choice_(first_choice), last_token_(n), metrics_(metrics) {}

  void on_token(int sample, const std::string& delta, int32_t token, const TokenChoice* choice) override {
    const auto now = Clock::now();
    if (!job_->first_token_seen_) {
      job_->first_token_seen_ = true;
      metrics_.observe_time_to_first_token(seconds_between(job_->arrived_, now));
    } else if (last_token_[sample]) {
      metrics_.observe_time_per_output_token(seconds_between(*last_token_[sample], now));
    }
    last_token_[sample] = now;
    metrics_.add_generation_tokens(1);
    JobEvent e;
    e.choice = first_choice_ + sample;
    e.delta = delta;
    e.token = token;
    if (choice) e.logprobs = *choice;
    job_->push(std::move(e));
  }

  void on_finish(int sample, const std::string& delta, Completion&& completion) override {
    job_->last_finish_reason_ = completion.finish_reason;
    JobEvent e;
    e.choice = first_choice_ + sample;
    e.delta = delta;
    e.finished = std::move(completion);
    job_->push(std::move(e));
  }

 private:
  std::shared_ptr<Job> job_;
  size_t first_choice_;
  std::vector<std::optional<Clock::time_point>> last_token_;
  Metrics& metrics_;
};

BatchDecoderOptions Scheduler::decoder_options() const {
  BatchDecoderOptions o;
  o.max_rows = options_.max_num_seqs;
  o.max_positions = options_.max_model_len;
  o.keep_prefix = true;  // an agent's requests repeat one system prompt
  return o;
}

Scheduler::Scheduler(LoadedModel& model, SchedulerOptions options, Metrics& metrics)
    : model_(model), options_(options), metrics_(metrics) {
  const int64_t model_len = model_.config.max_position_embeddings;
  if (options_.max_model_len <= 0) options_.max_model_len = model_len;
  if (options_.max_model_len > model_len && model_.config.rope_scaling.type != "dynamic")
    fail("--max-model-len " + std::to_string(options_.max_model_len) + " exceeds the model's max_position_embeddings " +
         std::to_string(model_len));
  if (options_.max_num_seqs < 1) fail("--max-num-seqs must be >= 1");
  set_active_adapters(model_.model, {});
  decoder_ = std::make_unique<BatchDecoder>(model_.model, model_.tokenizer.get(),
                                            decoder_options());
}

Scheduler::~Scheduler() {
  if (thread_.joinable()) shutdown(std::chrono::milliseconds(0));
}

void Scheduler::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    engine_running_ = true;
  }
  thread_ = std::thread([this] { loop(); });
}

void Scheduler::submit(const std::shared_ptr<Job>& job) {
  if (job->rows() > options_.max_num_seqs)
    throw ApiError(400, "The request asks for " + std::to_string(job->rows()) +
                            " sequences (prompts x n), more than this server decodes at once (--max-num-seqs " +
                            std::to_string(options_.max_num_seqs) + ").",
                   "n");
  std::lock_guard<std::mutex> lock(mutex_);
  if (!accepting_) throw ApiError(503, "The server is shutting down.");
  if (waiting_.size() >= options_.max_waiting)
    throw ApiError(503, "The server is busy: " + std::to_string(waiting_.size()) +
                            " requests are waiting (--max-waiting-requests " + std::to_string(options_.max_waiting) +
                            "); retry later.");
  if (!job->adapter().empty() && !adapters_.count(job->adapter()))
    throw ApiError(404, "The model `" + job->adapter() + "` does not exist.", "model");
  job->arrived_ = Clock::now();
  waiting_.push_back(job);
  waiting_count_ = static_cast<int64_t>(waiting_.size());
  cv_.notify_all();
}

void Scheduler::run_on_engine(const std::function<void()>& command) {
  auto done = std::make_shared<std::promise<void>>();
  auto result = done->get_future();
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!engine_running_) {
      lock.unlock();
      command();  // no engine thread (before start, after shutdown): nothing else touches the model
      return;
    }
    commands_.push_back([command, done] {
      try {
        command();
        done->set_value();
      } catch (...) {
        done->set_exception(std::current_exception());
      }
    });
  }
  cv_.notify_all();
  result.get();  // rethrows the command's ApiError
}

void Scheduler::load_adapter(const std::string& name, const std::string& path, bool replace) {
  if (name.empty() || path.empty())
    throw ApiError(400, "Both 'lora_name' and 'lora_path' must be provided.");
  run_on_engine([&] {
    std::map<std::string, std::string> loaded;
    bool exists = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& [n, a] : adapters_) loaded[n] = a.internal;
      exists = adapters_.count(name) > 0;
    }
    if (exists && !replace)
      throw ApiError(400, "The lora adapter '" + name +
                              "' has already been loaded. If you want to load the adapter in place, set "
                              "'load_inplace' to True.");
    if (!exists && static_cast<int>(loaded.size()) >= options_.max_loras)
      throw ApiError(400, "Cannot load LoRA adapter '" + name + "': " + std::to_string(loaded.size()) +
                              " adapter(s) already loaded (" + join_names(loaded) + ") and --max-loras is " +
                              std::to_string(options_.max_loras) + "; unload one or raise --max-loras.");
    if (!fs::is_directory(path)) throw ApiError(404, "No adapter found for " + path + ".", "lora_path");
    const std::string internal = "serve" + std::to_string(++adapter_counter_);
    LoraConfig config;
    try {
      config = load_peft_adapter(model_.model, internal, path);
    } catch (const Error& e) {
      throw ApiError(400, std::string("Cannot load LoRA adapter '") + name + "': " + e.what(), "lora_path");
    }
    set_active_adapters(model_.model, {});  // requests name their adapter; none is model-wide
    if (config.r > options_.max_lora_rank) {
      remove_adapter(model_.model, internal);
      throw ApiError(400, "LoRA rank " + std::to_string(config.r) + " is greater than max_lora_rank " +
                              std::to_string(options_.max_lora_rank) + " (raise --max-lora-rank).",
                     "lora_path");
    }
    Adapter adapter{internal, {name, path, config.r, static_cast<int64_t>(std::time(nullptr))}};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = adapters_.find(name);
      if (it != adapters_.end()) retired_.push_back(it->second.internal);
      adapters_[name] = adapter;
    }
    drop_retired_adapters();
    log::info("serve: loaded LoRA adapter '" + name + "' (rank " + std::to_string(config.r) + ") from " + path);
  });
}

void Scheduler::unload_adapter(const std::string& name) {
  if (name.empty()) throw ApiError(400, "'lora_name' must be provided.", "lora_name");
  run_on_engine([&] {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = adapters_.find(name);
      if (it == adapters_.end()) throw ApiError(404, "The lora adapter '" + name + "' cannot be found.", "lora_name");
      retired_.push_back(it->second.internal);
      adapters_.erase(it);
    }
    drop_retired_adapters();
    log::info("serve: unloaded LoRA adapter '" + name + "'");
  });
}

std::vector<AdapterCard> Scheduler::adapters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<AdapterCard> out;
  for (const auto& [_, a] : adapters_) out.push_back(a.card);
  return out;
}

bool Scheduler::has_adapter(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return adapters_.count(name) > 0;
}

void Scheduler::drop_retired_adapters() {
  // Engine thread (or before start): the decoder is ours to read.
  const auto in_use = decoder_->adapters_in_use();
  std::vector<std::string> keep;
  for (const auto& internal : retired_) {
    if (in_use.count(internal)) keep.push_back(internal);
    else remove_adapter(model_.model, internal);
  }
  retired_.swap(keep);
}

void Scheduler::shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    accepting_ = false;
  }
  const auto deadline = Clock::now() + grace;
  while (Clock::now() < deadline && (waiting_count_ > 0 || running_count_ > 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& job : waiting_) job->fail(ApiError(503, "The server is shutting down."));
    waiting_.clear();
    waiting_count_ = 0;
    stopping_ = true;  // the engine cancels its running jobs, finishes their rows and exits
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::publish_gauges() {
  std::lock_guard<std::mutex> lock(mutex_);
  running_count_ = static_cast<int64_t>(running_.size());
  waiting_count_ = static_cast<int64_t>(waiting_.size());
  kv_usage_ = static_cast<double>(decoder_->cached_positions()) /
              static_cast<double>(options_.max_num_seqs * options_.max_model_len);
}

void Scheduler::loop() {
  c10::InferenceMode inference;
  for (;;) {
    std::deque<std::function<void()>> commands;
    std::vector<std::shared_ptr<Job>> admitted;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !commands_.empty() || !waiting_.empty() || !decoder_->empty(); });
      commands.swap(commands_);
      // Jobs whose client left while they waited never reach the batch.
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if ((*it)->cancelled()) {
          (*it)->fail(ApiError(499, "The client closed the request."));
          it = waiting_.erase(it);
        } else {
          ++it;
        }
      }
      // FIFO admission while rows are free, up to the prefill budget (always one job).
      int64_t free_rows = decoder_->free_rows(), prompts = 0, longest = 0;
      while (!waiting_.empty() && waiting_.front()->rows() <= free_rows) {
        const auto& job = waiting_.front();
        int64_t job_longest = longest;
        for (const auto& p : job->prompts()) job_longest = std::max<int64_t>(job_longest, p.prompt.size());
        const int64_t job_prompts = prompts + static_cast<int64_t>(job->prompts().size());
        if (!admitted.empty() && job_prompts * job_longest > options_.prefill_tokens_per_step) break;
        prompts = job_prompts;
        longest = job_longest;
        free_rows -= job->rows();
        admitted.push_back(job);
        waiting_.pop_front();
      }
      if (stopping_ && commands.empty() && admitted.empty() && decoder_->empty() && waiting_.empty()) break;
    }
    for (auto& command : commands) command();
    if (!admitted.empty()) admit(std::move(admitted));
    const bool stopping = stopping_flag();
    for (auto& job : running_) {
      if (stopping) job->cancel();
      if (job->cancelled())
        for (auto id : job->ids_) decoder_->cancel(id);
    }
    if (!decoder_->empty()) step();
    finish_jobs();
    drop_retired_adapters();
    publish_gauges();
  }
  // Commands that arrived while stopping still run here, on the engine thread.
  std::deque<std::function<void()>> left;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    engine_running_ = false;
    left.swap(commands_);
  }
  for (auto& command : left) command();
}

bool Scheduler::stopping_flag() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopping_;
}

void Scheduler::admit(std::vector<std::shared_ptr<Job>> jobs) {
  // Bind each job's adapter to the weights loaded now (a later replacement does not touch it).
  std::vector<std::shared_ptr<Job>> ready;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& job : jobs) {
      std::string internal;
      if (!job->adapter().empty()) {
        auto it = adapters_.find(job->adapter());
        if (it == adapters_.end()) {
          job->fail(ApiError(404, "The model `" + job->adapter() + "` does not exist.", "model"));
          continue;
        }
        internal = it->second.internal;
      }
      for (auto& p : job->prompts_) p.adapter = internal;
      ready.push_back(job);
    }
  }
  auto admit_together = [&](const std::vector<std::shared_ptr<Job>>& group) {
    std::vector<GenerationRequest> requests;
    std::vector<std::shared_ptr<DecodeListener>> listeners;
    for (const auto& job : group) {
      size_t first_choice = 0;
      for (const auto& p : job->prompts()) {
        requests.push_back(p);
        listeners.push_back(std::make_shared<JobListener>(job, first_choice, p.params.n, metrics_));
        first_choice += static_cast<size_t>(p.params.n);
      }
    }
    const int64_t shared_before = decoder_->shared_prefix_tokens();
    auto ids = decoder_->admit(requests, listeners);
    metrics_.add_prefix_cache_hits(decoder_->shared_prefix_tokens() - shared_before);
    size_t k = 0;
    for (const auto& job : group) {
      for (size_t i = 0; i < job->prompts().size(); ++i) job->ids_.push_back(ids[k++]);
      int64_t tokens = 0;
      for (const auto& p : job->prompts()) tokens += static_cast<int64_t>(p.prompt.size());
      metrics_.add_prompt_tokens(tokens);
      running_.push_back(job);
    }
  };
  try {
    admit_together(ready);
  } catch (const Error&) {
    // One bad job must not keep the others out: admit them one by one (nothing was admitted).
    for (const auto& job : ready) {
      try {
        admit_together({job});
      } catch (const Error& e) {
        job->fail(ApiError(400, e.what()));
      }
    }
  } catch (const std::exception& e) {
    for (const auto& job : ready) job->fail(ApiError(500, std::string("prefill failed: ") + e.what()));
  }
}

void Scheduler::step() {
  try {
    decoder_->step();
  } catch (const std::exception& e) {
    fail_running(e.what());
  }
}

void Scheduler::fail_running(const std::string& why) {
  // A failed forward leaves the batch in an unknown state: answer its jobs, start afresh.
  log::warn("serve: decode step failed: " + why);
  for (auto& job : running_) job->fail(ApiError(500, "decode step failed: " + why));
  running_.clear();
  decoder_ = std::make_unique<BatchDecoder>(model_.model, model_.tokenizer.get(),
                                            decoder_options());
}

void Scheduler::finish_jobs() {
  std::vector<std::shared_ptr<Job>> still;
  const auto now = Clock::now();
  for (auto& job : running_) {
    bool finished;
    {
      std::lock_guard<std::mutex> lock(job->mutex_);
      finished = job->all_finished() || job->error_.has_value();
    }
    if (!finished) {
      still.push_back(job);
      continue;
    }
    metrics_.observe_e2e_latency(seconds_between(job->arrived_, now));
    metrics_.count_finished(job->last_finish_reason_.empty() ? "abort" : job->last_finish_reason_);
  }
  running_.swap(still);
}

}  // namespace lathe::serve
