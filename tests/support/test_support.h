// Helpers shared by the test suites: where the shared fixtures are, and temporary folders.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "model/hf_config.h"

namespace lathe::testing {

// ../shared/fixtures/<relative> from the project root (tests run there), or nullopt.
std::optional<std::string> fixture_path(const std::string& relative);

// Skips the current test with a clear message when a fixture is absent.
#define LATHE_REQUIRE_FIXTURE(var, relative)                                          \
  auto var##_opt = ::lathe::testing::fixture_path(relative);                          \
  if (!var##_opt) GTEST_SKIP() << "../shared/fixtures/" << (relative)                 \
                               << " is absent (a clone without ../shared); skipping"; \
  const std::string var = *var##_opt

// Random text for tokenizer round trips: chunks of CJK, emoji (with ZWJ and modifiers),
// combining marks, Cyrillic, Khmer, whitespace runs, digits and special-token look-alikes.
std::string random_unicode_text(std::mt19937& rng, size_t n_chunks);

// Writes `text` to `path` as it is (test inputs, good and malformed).
void write_text(const std::string& path, const std::string& text);

// A 2-layer, hidden-32 llama shape (4 heads, 2 kv heads) for tests that need a model that
// runs in milliseconds.
ModelConfig tiny_test_config(int64_t vocab_size, int64_t max_positions = 128);

// The `lathe` binary of this build (build/cli/lathe, found from the test binary's own path
// build/tests/<folder>/<test>), or $LATHE_BINARY when set.
std::string lathe_binary();

struct CommandResult {
  int exit_code = -1;   // the shell's status (128 + signal when the command was killed)
  std::string output;   // stdout and stderr together
  double seconds = 0;   // wall time
};
// Runs `command` with /bin/sh, capturing its output.
CommandResult run_shell(const std::string& command);

// Largest |a − b| over the tensors of two safetensors files (+inf, with a test failure, when
// their names or shapes differ).
double max_abs_difference(const std::string& safetensors_a, const std::string& safetensors_b);
// The numbers under `key` in the lines of a JSONL file that have it, in order.
std::vector<double> jsonl_numbers(const std::string& path, const std::string& key);

// A fresh, empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace lathe::testing
