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
