#include "core/progress.h"

#include <algorithm>
#include <cstdio>

namespace lathe {

std::string progress_bar(int64_t step, int64_t total, int width) {
  const int64_t filled = total > 0 ? std::clamp<int64_t>(step * width / total, 0, width) : 0;
  return "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.') +
         "]";
}

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::max(0.0, seconds) + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", static_cast<long>(s / 3600), static_cast<long>(s / 60 % 60));
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", static_cast<long>(s / 60), static_cast<long>(s % 60));
  else std::snprintf(buf, sizeof buf, "%lds", static_cast<long>(s));
  return buf;
}

Progress::Progress(int64_t total_steps, bool enabled, bool tty) : total_(total_steps), enabled_(enabled), tty_(tty) {}

Progress::~Progress() { break_line(); }

void Progress::update(int64_t step, const std::string& fields, double eta_seconds, bool log_line) {
  if (!enabled_) return;
  const std::string count = "step " + std::to_string(step) + "/" + std::to_string(total_);
  const std::string eta = step < total_ ? "ETA " + format_duration(eta_seconds) : "done";
  if (tty_) {
    const int64_t percent = total_ > 0 ? step * 100 / total_ : 100;
    std::fprintf(stderr, "\r\033[K%s %s %3ld%%  %s  %s", count.c_str(), progress_bar(step, total_).c_str(),
                 static_cast<long>(percent), fields.c_str(), eta.c_str());
    std::fflush(stderr);
    bar_open_ = true;
    if (step >= total_) break_line();
  } else if (log_line) {
    std::fprintf(stderr, "%s  %s  %s\n", count.c_str(), fields.c_str(), eta.c_str());
  }
}

void Progress::break_line() {
  if (!bar_open_) return;
  std::fprintf(stderr, "\n");
  bar_open_ = false;
}

}  // namespace lathe
