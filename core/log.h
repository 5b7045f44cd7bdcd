// Minimal leveled logging to stderr. Machines read metrics JSONL; logs are for people.
#pragma once
#include <string>

namespace lathe::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void set_level(Level level);
void write(Level level, const std::string& message);
inline void info(const std::string& m) { write(Level::Info, m); }
inline void warn(const std::string& m) { write(Level::Warn, m); }
inline void debug(const std::string& m) { write(Level::Debug, m); }

}  // namespace lathe::log
