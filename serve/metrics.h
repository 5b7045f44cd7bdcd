// The server's Prometheus metrics (GET /metrics, text exposition format 0.0.4), under vLLM's
// names so dashboards and alerts written for vLLM read lathe unchanged: vllm:num_requests_*,
// vllm:kv_cache_usage_perc, vllm:prompt_tokens_total, vllm:generation_tokens_total,
// vllm:request_success_total{finished_reason}, and the histograms
// vllm:time_to_first_token_seconds, vllm:time_per_output_token_seconds (the gap between
// consecutive tokens of a sample) and vllm:e2e_request_latency_seconds, each labelled
// model_name. Buckets are vLLM's, with finer ones added below 10 ms for CPU decoding.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace lathe::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // "_bucket"/"_sum"/"_count" lines of `name` with `labels` ("model_name=\"x\"").
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  explicit Metrics(const std::string& model_name);

  void add_prompt_tokens(int64_t n);
  void add_generation_tokens(int64_t n);
  // Prompt tokens whose keys and values came from a shared or kept prefix.
  void add_prefix_cache_hits(int64_t n);
  void observe_time_to_first_token(double seconds);
  void observe_time_per_output_token(double seconds);
  void observe_e2e_latency(double seconds);
  void count_finished(const std::string& finish_reason);  // "stop" | "length" | "abort"

  // The whole exposition; the gauges come from the scheduler at scrape time.
  std::string render(int64_t running, int64_t waiting, double kv_cache_usage) const;

 private:
  mutable std::mutex mutex_;
  std::string labels_;
  uint64_t prompt_tokens_ = 0, generation_tokens_ = 0, prefix_cache_hits_ = 0;
  std::map<std::string, uint64_t> finished_;
  Histogram ttft_, tpot_, e2e_;
};

}  // namespace lathe::serve
