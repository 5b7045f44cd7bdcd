#include "tests/support/test_support.h"

#include <unistd.h>

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "model/safetensors.h"

namespace lathe::testing {
namespace fs = std::filesystem;

std::optional<std::string> fixture_path(const std::string& relative) {
  const char* override_root = std::getenv("LATHE_FIXTURES");
  const fs::path root = override_root ? fs::path(override_root) : fs::path("../shared/fixtures");
  const fs::path p = root / relative;
  if (fs::exists(p)) return p.string();
  return std::nullopt;
}

std::string lathe_binary() {
  if (const char* override_path = std::getenv("LATHE_BINARY")) return override_path;
  // build/tests/<folder>/<test binary> -> build/cli/lathe
  return (fs::read_symlink("/proc/self/exe").parent_path().parent_path().parent_path() / "cli" / "lathe").string();
}

CommandResult run_shell(const std::string& command) {
  CommandResult result;
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> chunk;
  size_t n;
  while ((n = std::fread(chunk.data(), 1, chunk.size(), pipe)) > 0) result.output.append(chunk.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

double max_abs_difference(const std::string& safetensors_a, const std::string& safetensors_b) {
  const SafetensorsFile a(safetensors_a), b(safetensors_b);
  if (a.names() != b.names()) {
    ADD_FAILURE() << safetensors_a << " and " << safetensors_b << " hold different tensors";
    return std::numeric_limits<double>::infinity();
  }
  double worst = 0;
  for (const auto& name : a.names()) {
    const auto x = a.load(name).to(torch::kFloat64), y = b.load(name).to(torch::kFloat64);
    if (x.sizes() != y.sizes()) {
      ADD_FAILURE() << name << " has different shapes in " << safetensors_a << " and " << safetensors_b;
      return std::numeric_limits<double>::infinity();
    }
    worst = std::max(worst, (x - y).abs().max().item<double>());
  }
  return worst;
}

std::vector<double> jsonl_numbers(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::vector<double> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    if (j.contains(key)) out.push_back(j[key].get<double>());
  }
  return out;
}

std::string random_unicode_text(std::mt19937& rng, size_t n_chunks) {
  static const std::vector<std::string> pool = {
      "a", "Z", "the", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", "'s", "'LL", "’", "123", "4",
      "你好", "宝马", "日本語", "한국어", "🚗", "👍🏽", "👨‍👩‍👧", "é", "e\xCC\x81", "\xCC\x88", "\xE0\xA5\xA7",
      "\xD9\xA4", "\xC2\xA0", "\xE3\x80\x80", "Ж", "мир", "<", "|", ">", "<|im_end", "_", "-", "$", "%", ".",
      "ស្រុក", "Việt"};
  std::string text;
  std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
  for (size_t i = 0; i < n_chunks; ++i) text += pool[pick(rng)];
  return text;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

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
