#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace lathe::log {

namespace {
std::atomic<int> g_level{static_cast<int>(Level::Info)};
std::mutex g_mutex;
const char* prefix(Level level) {
  switch (level) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warning";
    case Level::Error: return "error";
  }
  return "";
}
}  // namespace

void set_level(Level level) { g_level = static_cast<int>(level); }

void write(Level level, const std::string& message) {
  if (static_cast<int>(level) < g_level) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "lathe %s: %s\n", prefix(level), message.c_str());
}

}  // namespace lathe::log
