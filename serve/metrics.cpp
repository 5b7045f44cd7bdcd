#include "serve/metrics.h"

#include <cstdio>

namespace lathe::serve {

namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void header(std::string& out, const std::string& name, const std::string& type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += name + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum{" + labels + "} " + number(sum_) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count_) + "\n";
}

Metrics::Metrics(const std::string& model_name)
    : labels_("model_name=\"" + escape_label(model_name) + "\""),
      ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
             80.0, 160.0, 640.0, 2560.0}),
      tpot_({0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
             5.0, 7.5, 10.0, 20.0, 40.0, 80.0}),
      e2e_({0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
            120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}) {
  for (const char* reason : {"stop", "length", "abort"}) finished_[reason] = 0;
}

void Metrics::add_prompt_tokens(int64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  prompt_tokens_ += n;
}
void Metrics::add_prefix_cache_hits(int64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  prefix_cache_hits_ += n;
}
void Metrics::add_generation_tokens(int64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  generation_tokens_ += n;
}
void Metrics::observe_time_to_first_token(double s) {
  std::lock_guard<std::mutex> lock(mutex_);
  ttft_.observe(s);
}
void Metrics::observe_time_per_output_token(double s) {
  std::lock_guard<std::mutex> lock(mutex_);
  tpot_.observe(s);
}
void Metrics::observe_e2e_latency(double s) {
  std::lock_guard<std::mutex> lock(mutex_);
  e2e_.observe(s);
}
void Metrics::count_finished(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++finished_[reason];
}

std::string Metrics::render(int64_t running, int64_t waiting, double kv_cache_usage) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  auto gauge = [&](const std::string& name, const std::string& help, const std::string& value) {
    header(out, name, "gauge", help);
    out += name + "{" + labels_ + "} " + value + "\n";
  };
  gauge("vllm:num_requests_running", "Number of requests in the running batch.", std::to_string(running));
  gauge("vllm:num_requests_waiting", "Number of requests waiting to be admitted.", std::to_string(waiting));
  gauge("vllm:kv_cache_usage_perc", "KV-cache usage: filled positions over the batch's maximum. 1 means 100 percent.",
        number(kv_cache_usage));
  header(out, "vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.");
  out += "vllm:prompt_tokens_total{" + labels_ + "} " + std::to_string(prompt_tokens_) + "\n";
  // vLLM's names: queries and hits counted in prompt tokens.
  header(out, "vllm:prefix_cache_queries_total", "counter", "Prefix cache queries, in terms of number of queried tokens.");
  out += "vllm:prefix_cache_queries_total{" + labels_ + "} " + std::to_string(prompt_tokens_) + "\n";
  header(out, "vllm:prefix_cache_hits_total", "counter", "Prefix cache hits, in terms of number of cached tokens.");
  out += "vllm:prefix_cache_hits_total{" + labels_ + "} " + std::to_string(prefix_cache_hits_) + "\n";
  header(out, "vllm:generation_tokens_total", "counter", "Number of generation tokens processed.");
  out += "vllm:generation_tokens_total{" + labels_ + "} " + std::to_string(generation_tokens_) + "\n";
  header(out, "vllm:request_success_total", "counter", "Count of finished requests by finish reason.");
  for (const auto& [reason, n] : finished_)
    out += "vllm:request_success_total{" + labels_ + ",finished_reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
  header(out, "vllm:time_to_first_token_seconds", "histogram", "Histogram of time to first token in seconds.");
  ttft_.render(out, "vllm:time_to_first_token_seconds", labels_);
  header(out, "vllm:time_per_output_token_seconds", "histogram",
         "Histogram of time between consecutive output tokens in seconds.");
  tpot_.render(out, "vllm:time_per_output_token_seconds", labels_);
  header(out, "vllm:e2e_request_latency_seconds", "histogram", "Histogram of end to end request latency in seconds.");
  e2e_.render(out, "vllm:e2e_request_latency_seconds", labels_);
  return out;
}

}  // namespace lathe::serve
