// JSON-lines run-tree traces (see trace.h).
#include "agent/trace.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>

#include "core/error.h"
#include "data/example.h"

namespace lathe::agent {

std::string new_run_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // RFC 4122 variant
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx", static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xFFFF), static_cast<unsigned long long>(hi & 0xFFFF),
                static_cast<unsigned long long>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return buf;
}

std::string utc_timestamp(std::chrono::system_clock::time_point when) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

Tracer::Tracer(std::string path) : path_(std::move(path)) {}

void Tracer::write(const nlohmann::json& record) {
  if (path_.empty()) return;
  const std::string line = data::to_json_line(record);
  std::lock_guard<std::mutex> lock(mutex_);
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot append to trace file " + path_ + ": " + std::strerror(errno));
  const ssize_t written = ::write(fd, line.data(), line.size());
  const int saved = errno;
  ::close(fd);
  if (written != static_cast<ssize_t>(line.size())) {
    fail("cannot append to trace file " + path_ + ": " + (written < 0 ? std::strerror(saved) : "short write"));
  }
}

TraceSpan::TraceSpan(Tracer& tracer, std::string step, std::string name, std::string parent_run_id,
                     std::string trace_id, int attempt)
    : tracer_(tracer),
      run_id_(new_run_id()),
      step_(std::move(step)),
      name_(std::move(name)),
      parent_(std::move(parent_run_id)),
      trace_id_(std::move(trace_id)),
      attempt_(attempt),
      start_wall_(std::chrono::system_clock::now()),
      start_(std::chrono::steady_clock::now()) {
  if (trace_id_.empty()) trace_id_ = run_id_;
}

void TraceSpan::set_timing(double offset_ms, double latency_ms) {
  offset_ms_ = offset_ms;
  latency_ms_ = latency_ms;
}

double TraceSpan::finish() {
  const bool timed_here = latency_ms_ < 0;
  const double latency_ms =
      timed_here ? std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count()
                 : latency_ms_;
  if (!tracer_.enabled()) return latency_ms;
  using Micros = std::chrono::microseconds;
  const auto start = start_wall_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                       Micros(static_cast<int64_t>(offset_ms_ * 1000)));
  const auto end = start + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                               Micros(static_cast<int64_t>(latency_ms * 1000)));
  nlohmann::json record = {{"run_id", run_id_},
                           {"parent_run_id", parent_.empty() ? nlohmann::json() : nlohmann::json(parent_)},
                           {"trace_id", trace_id_},
                           {"step", step_},
                           {"name", name_},
                           {"attempt", attempt_},
                           {"start_time", utc_timestamp(start)},
                           {"end_time", utc_timestamp(end)},
                           {"latency_ms", latency_ms},
                           {"inputs", inputs},
                           {"outputs", outputs},
                           {"error", error.empty() ? nlohmann::json() : nlohmann::json(error)},
                           {"tokens", tokens}};
  tracer_.write(record);
  return latency_ms;
}

}  // namespace lathe::agent
