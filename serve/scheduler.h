// The engine of `lathe serve`: one thread that owns the model and a BatchDecoder, a bounded
// FIFO queue of jobs in front of it (continuous batching: jobs join the running batch between
// decode steps, as rows free up), and the LoRA adapters the server holds.
//
// Adapter loads and unloads run on the engine thread between steps, so they never race a
// forward. Each load gets a fresh internal adapter name: a replaced adapter (load_inplace)
// serves the requests admitted after the load, requests already running finish on the
// weights they started with, and the old weights are dropped as soon as no row uses them —
// no KV cache or merged weight made from them outlives that.
//
// --max-loras counts adapters loaded at once. vLLM's counts adapters per batch and keeps more
// in a CPU cache; lathe keeps every loaded adapter resident, so the two limits are one here.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/batch_decoder.h"
#include "model/model_io.h"
#include "serve/api_error.h"
#include "serve/metrics.h"

namespace lathe::serve {

using Clock = std::chrono::steady_clock;

// One event of a job, for the HTTP thread that answers it.
struct JobEvent {
  size_t choice = 0;                    // prompt index * n + sample: the response's choice index
  std::string delta;                    // text that became final
  int32_t token = -1;                   // the sampled id; -1 for the finishing event
  std::optional<TokenChoice> logprobs;  // when the request asked for them
  std::optional<Completion> finished;   // set on the choice's last event
};

// A completions or chat request as the scheduler runs it: one GenerationRequest per prompt.
class Job {
 public:
  Job(std::vector<GenerationRequest> prompts, std::string adapter);

  const std::vector<GenerationRequest>& prompts() const { return prompts_; }
  const std::string& adapter() const { return adapter_; }  // served name, "" = the base model
  size_t choices() const { return choices_; }              // prompts x n
  int64_t rows() const { return static_cast<int64_t>(choices_); }

  // The next event, waiting up to `timeout`; nullopt on timeout or once every choice has
  // finished and its events were taken. Throws the ApiError that failed the job.
  std::optional<JobEvent> next(std::chrono::milliseconds timeout);
  bool done() const;  // every choice finished (or the job failed) and all events were taken
  // The client went away: its rows stop at the next step (finish_reason "abort").
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  friend class Scheduler;
  friend class JobListener;
  void push(JobEvent event);
  void fail(const ApiError& error);
  bool all_finished() const;

  std::vector<GenerationRequest> prompts_;
  std::string adapter_;
  size_t choices_ = 0;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<JobEvent> events_;
  size_t finished_choices_ = 0;
  std::optional<ApiError> error_;
  // Engine-thread state.
  Clock::time_point arrived_;
  std::vector<BatchDecoder::RequestId> ids_;
  bool first_token_seen_ = false;
  std::string last_finish_reason_;
};

struct SchedulerOptions {
  int64_t max_num_seqs = 64;              // rows (sequences) decoded together
  size_t max_waiting = 128;               // queued jobs beyond which submit() answers 503
  int64_t max_model_len = 0;              // prompt + max_tokens per request (0 = the model's)
  int max_loras = 1;                      // adapters loaded at once
  int max_lora_rank = 16;
  int64_t prefill_tokens_per_step = 4096; // padded prompt tokens admitted per step (>= one job)
};

struct AdapterCard {
  std::string name, path;
  int64_t rank = 0;
  int64_t created = 0;  // unix seconds of the (latest) load
};

class Scheduler {
 public:
  // The model must stay alive while the scheduler runs; its active adapters are cleared (a
  // request names its adapter).
  Scheduler(LoadedModel& model, SchedulerOptions options, Metrics& metrics);
  ~Scheduler();

  void start();  // the engine thread; adapters may be loaded before it starts

  // Queues a job. ApiError 503 when the queue is full or the server is shutting down, 404 for
  // an adapter that is not loaded, 400 when the job needs more rows than --max-num-seqs.
  void submit(const std::shared_ptr<Job>& job);

  // ApiError 400 (bad adapter, name taken without replace, --max-loras or --max-lora-rank
  // exceeded) or 404 (no adapter folder at path).
  void load_adapter(const std::string& name, const std::string& path, bool replace);
  void unload_adapter(const std::string& name);  // ApiError 404 when not loaded
  std::vector<AdapterCard> adapters() const;
  bool has_adapter(const std::string& name) const;

  int64_t running() const { return running_count_; }  // jobs in the batch
  int64_t waiting() const { return waiting_count_; }  // jobs in the queue
  double kv_cache_usage() const { return kv_usage_; }  // filled positions / (max_num_seqs x max_model_len)
  int64_t max_model_len() const { return options_.max_model_len; }

  // Stops taking jobs (503), lets queued and running jobs finish for up to `grace`, cancels
  // the rest and stops the engine thread.
  void shutdown(std::chrono::milliseconds grace);

 private:
  BatchDecoderOptions decoder_options() const;
  struct Adapter {
    std::string internal;  // the name inside the model (a fresh one per load)
    AdapterCard card;
  };

  void loop();
  void run_on_engine(const std::function<void()>& command);
  void admit(std::vector<std::shared_ptr<Job>> jobs);
  void step();
  void fail_running(const std::string& why);
  void drop_retired_adapters();
  void finish_jobs();
  void publish_gauges();
  bool stopping_flag();

  LoadedModel& model_;
  SchedulerOptions options_;
  Metrics& metrics_;
  std::unique_ptr<BatchDecoder> decoder_;

  mutable std::mutex mutex_;  // guards the queue, commands, adapters and flags below
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> waiting_;
  std::deque<std::function<void()>> commands_;
  std::map<std::string, Adapter> adapters_;
  bool accepting_ = true, stopping_ = false;
  std::thread thread_;
  bool engine_running_ = false;  // guarded by mutex_

  // Engine-thread state.
  std::vector<std::shared_ptr<Job>> running_;
  std::vector<std::string> retired_;  // internal names to drop once no row uses them
  uint64_t adapter_counter_ = 0;

  std::atomic<int64_t> running_count_{0}, waiting_count_{0};
  std::atomic<double> kv_usage_{0};
};

}  // namespace lathe::serve
