// The embedded default endpoint: `lathe agent … --model-dir DIR [--adapter DIR]` starts the
// `lathe serve` subcommand of this same binary on a free loopback port (core/subprocess.h),
// waits until /health answers, and stops it (SIGTERM, then SIGKILL after a grace period)
// when done. The child dies with the agent, and its output goes to a log file whose tail is
// quoted when it fails to come up.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/launch.h"  // free_local_port, used by the agent tests too
#include "core/subprocess.h"

namespace lathe::agent {

struct LocalServerOptions {
  std::string executable;  // empty = this binary (/proc/self/exe)
  std::string model_dir;
  std::vector<std::pair<std::string, std::string>> adapters;  // served name → PEFT folder
  std::string served_model_name = "base";
  std::vector<std::string> extra_args;  // appended to `serve …` (e.g. --device cuda)
  double startup_timeout_seconds = 300;
};

class LocalServer {
 public:
  // Returns once /health answers 200; throws lathe::Error (with the log's tail) when the
  // child exits first or the timeout passes.
  explicit LocalServer(const LocalServerOptions& options);
  ~LocalServer();
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  const std::string& endpoint() const { return endpoint_; }  // http://127.0.0.1:PORT/v1
  // The argv it ran, for messages and tests.
  const std::vector<std::string>& command() const { return command_; }

 private:
  void stop();
  std::unique_ptr<Subprocess> child_;
  std::string endpoint_, log_path_;
  std::vector<std::string> command_;
};

// Parses "--adapter DIR" / "--adapter NAME=DIR" values: NAME defaults to "inventory" for the
// first and to the folder's name for the others.
std::vector<std::pair<std::string, std::string>> parse_adapter_args(const std::vector<std::string>& values);

}  // namespace lathe::agent
