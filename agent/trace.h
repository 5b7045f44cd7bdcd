// Run-tree traces of the agent, one JSON object per line appended to a file, in the shape of
// LangSmith's runs so a person (or a script) can follow a wrong answer step by step:
//   {"run_id", "parent_run_id" (null for the root), "trace_id" (the root's run_id),
//    "step": "agent" | "llm" | "extract" | "guard" | "execute" | "answer",
//    "name", "attempt" (1-based; 0 for agent/answer), "start_time", "end_time" (UTC ISO-8601),
//    "latency_ms", "inputs" {…}, "outputs" {…}, "error" (null or text),
//    "tokens" {"prompt", "completion", "total"} (llm steps and the root)}
// A step's line is written when it ends, so children precede their parent. Each line goes
// out in one write() to a file opened O_APPEND: processes sharing a trace file never
// interleave within a line. docs/agent.md documents what each step's inputs/outputs hold.
#pragma once
#include <chrono>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace lathe::agent {

// A random UUID (version 4), the id form LangSmith uses.
std::string new_run_id();

// "2024-06-30T12:34:56.789Z"
std::string utc_timestamp(std::chrono::system_clock::time_point when);

class Tracer {
 public:
  // An empty path traces nothing. The file is created when missing.
  explicit Tracer(std::string path = "");
  bool enabled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  // Appends one record (a line). Throws lathe::Error naming the file when it cannot.
  void write(const nlohmann::json& record);

 private:
  std::string path_;
  std::mutex mutex_;
};

// One step being timed; finish() fills the timing fields and writes it.
class TraceSpan {
 public:
  TraceSpan(Tracer& tracer, std::string step, std::string name, std::string parent_run_id,
            std::string trace_id, int attempt);
  const std::string& run_id() const { return run_id_; }
  nlohmann::json inputs = nlohmann::json::object();
  nlohmann::json outputs = nlohmann::json::object();
  nlohmann::json tokens;  // null unless set
  std::string error;
  // A step timed elsewhere (the executor times its guard and run phases itself): it started
  // `offset_ms` after this span was made and took `latency_ms`.
  void set_timing(double offset_ms, double latency_ms);
  // Writes the record; the latency is the wall time since construction unless set_timing
  // gave one. Returns it in ms.
  double finish();

 private:
  Tracer& tracer_;
  std::string run_id_, step_, name_, parent_, trace_id_;
  int attempt_;
  double offset_ms_ = 0, latency_ms_ = -1;
  std::chrono::system_clock::time_point start_wall_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace lathe::agent
