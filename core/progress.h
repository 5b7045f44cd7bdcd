// Progress of a training loop on stderr. On a terminal: one line redrawn in place,
// "step 40/200 [######..............] 20%  loss 1.2345  ...  812 tok/s  ETA 1m05s";
// otherwise (a log file, a pipe) plain lines without escape codes, one per report, so logs
// stay greppable. Machines read metrics.jsonl; this is for people.
#pragma once
#include <cstdint>
#include <string>

namespace lathe {

// "[#####...............]": `width` cells, step/total of them filled.
std::string progress_bar(int64_t step, int64_t total, int width = 20);
// "42s", "1m05s", "2h03m".
std::string format_duration(double seconds);

class Progress {
 public:
  // enabled = false prints nothing; tty chooses the redrawn bar over plain lines.
  Progress(int64_t total_steps, bool enabled, bool tty);
  ~Progress();
  // `fields` follow the step count ("loss 1.23  812 tok/s"). On a terminal the bar is
  // redrawn on every call; plain lines are written only when `log_line` is true.
  void update(int64_t step, const std::string& fields, double eta_seconds, bool log_line);
  // Ends a bar line in progress so other output (eval results, warnings) starts on its own line.
  void break_line();

 private:
  int64_t total_;
  bool enabled_, tty_;
  bool bar_open_ = false;
};

}  // namespace lathe
