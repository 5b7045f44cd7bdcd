#include "tests/support/test_support.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>

namespace lathe::testing {
namespace fs = std::filesystem;

std::optional<std::string> fixture_path(const std::string& relative) {
  const char* override_root = std::getenv("LATHE_FIXTURES");
  const fs::path root = override_root ? fs::path(override_root) : fs::path("../shared/fixtures");
  const fs::path p = root / relative;
  if (fs::exists(p)) return p.string();
  return std::nullopt;
}

ModelConfig tiny_test_config(int64_t vocab_size, int64_t max_positions) {
  ModelConfig c;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.vocab_size = vocab_size;
  c.max_position_embeddings = max_positions;
  return c;
}

TempDir::TempDir() {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    fs::path p = fs::temp_directory_path() /
                 ("lathe-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::error_code ec;
    if (fs::create_directory(p, ec)) {
      path_ = p.string();
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace lathe::testing
