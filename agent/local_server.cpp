// Spawning `lathe serve` on loopback for the agent (see local_server.h).
#include "agent/local_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/openai_client.h"

namespace lathe::agent {

namespace {

std::string log_tail(const std::string& path, size_t max_lines) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    lines.push_back(line);
  }
  std::string out;
  for (size_t i = lines.size() > max_lines ? lines.size() - max_lines : 0; i < lines.size(); ++i) {
    out += (out.empty() ? "" : " | ") + lines[i];
  }
  return out.empty() ? "(no output)" : out;
}

std::string self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) fail("cannot find this program's path in /proc/self/exe to start `lathe serve`");
  return std::string(buf, n);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_adapter_args(const std::vector<std::string>& values) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& v : values) {
    const size_t eq = v.find('=');
    std::string name, dir;
    if (eq != std::string::npos && eq > 0 && v.find('/') > eq) {
      name = v.substr(0, eq);
      dir = v.substr(eq + 1);
    } else {
      dir = v;
      name = out.empty() ? "inventory" : std::filesystem::path(dir).lexically_normal().filename().string();
      if (name.empty()) name = std::filesystem::path(dir).lexically_normal().parent_path().filename().string();
    }
    if (dir.empty()) fail("--adapter " + v + ": no folder given");
    for (const auto& [n, d] : out) {
      if (n == name) fail("--adapter: two adapters named '" + name + "' (use NAME=DIR)");
    }
    out.emplace_back(name, dir);
  }
  return out;
}

LocalServer::LocalServer(const LocalServerOptions& options) {
  if (options.model_dir.empty()) fail("--model-dir is empty");
  const std::string exe = options.executable.empty() ? self_executable() : options.executable;
  const int port = free_local_port();
  command_ = {exe, "serve", "--model", options.model_dir, "--host", "127.0.0.1", "--port", std::to_string(port),
              "--served-model-name", options.served_model_name};
  for (const auto& [name, dir] : options.adapters) {
    command_.push_back("--lora-modules");
    command_.push_back(name + "=" + dir);
  }
  command_.insert(command_.end(), options.extra_args.begin(), options.extra_args.end());
  endpoint_ = "http://127.0.0.1:" + std::to_string(port) + "/v1";

  char log_template[] = "/tmp/lathe-agent-serve-XXXXXX";
  const int log_fd = ::mkstemp(log_template);
  if (log_fd < 0) fail(std::string("cannot create a log file for `lathe serve`: ") + std::strerror(errno));
  ::close(log_fd);
  log_path_ = log_template;
  Subprocess::Options child_options;
  child_options.pipe_stdin = false;
  child_options.pipe_stdout = false;
  child_options.output_path = log_path_;
  child_options.stop_with_parent = true;
  try {
    child_ = std::make_unique<Subprocess>(command_, "`lathe serve`", child_options);
  } catch (...) {
    stop();
    throw;
  }
  log::info("started `lathe serve` (pid " + std::to_string(child_->pid()) + ") on " + endpoint_ + ", log " + log_path_);

  OpenAiClientOptions client_options;
  client_options.endpoint = endpoint_;
  const OpenAiClient client(client_options);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(options.startup_timeout_seconds * 1000));
  for (;;) {
    if (!child_->running()) {
      const std::string how = child_->status_text();
      const std::string tail = log_tail(log_path_, 3);
      stop();
      fail("`lathe serve` " + how + " before it was ready (" + tail +
           "); to use a server that is already running, give --endpoint URL instead");
    }
    if (client.healthy(1.0)) return;
    if (std::chrono::steady_clock::now() > deadline) {
      const std::string tail = log_tail(log_path_, 3);
      stop();
      char buf[32];
      std::snprintf(buf, sizeof buf, "%g", options.startup_timeout_seconds);
      fail("`lathe serve` did not answer " + client.url("/health") + " within " + buf + " s (" + tail + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void LocalServer::stop() {
  if (child_) {
    child_->terminate(std::chrono::seconds(10));  // time to finish in-flight requests
    child_.reset();
  }
  if (!log_path_.empty()) {
    std::error_code ec;
    std::filesystem::remove(log_path_, ec);
    log_path_.clear();
  }
}

LocalServer::~LocalServer() { stop(); }

}  // namespace lathe::agent
