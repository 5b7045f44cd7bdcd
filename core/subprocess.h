// A child process lathe talks to over pipes: reward programs (JSON lines on stdin/stdout) and
// helper servers. Every read and write has a deadline, so a child that hangs or stops reading
// turns into a lathe::Error instead of a hung trainer; the destructor kills what is left.
// `lathe launch` runs its ranks through it too, polling their output pipes itself.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace lathe {

class Subprocess {
 public:
  struct Options {
    bool pipe_stdin = true;    // false: the child reads /dev/null
    bool pipe_stdout = true;   // false: the child writes to lathe's stdout
    bool quiet_stderr = false; // true: the child's stderr goes to /dev/null
    bool pipe_stderr = false;  // true: the child's stderr goes to its own pipe (stderr_fd())
    std::vector<std::string> env;  // "NAME=value" set in the child's environment, over lathe's
    // Non-empty: the child's stdout and stderr are appended to this file (a server's log),
    // instead of a pipe that someone would have to drain. Needs pipe_stdout = false.
    std::string output_path;
    // The child gets SIGTERM when lathe dies (PR_SET_PDEATHSIG; Linux sends it when the
    // thread that started the child ends, so start long-lived children from a lasting thread).
    bool stop_with_parent = false;
  };

  // Starts argv[0] (searched in PATH) with argv. Throws lathe::Error when it cannot start;
  // `what` names the child in every error ("reward program 'python3 score.py'").
  Subprocess(const std::vector<std::string>& argv, std::string what, Options options);
  Subprocess(const std::vector<std::string>& argv, std::string what) : Subprocess(argv, std::move(what), Options{}) {}
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& what() const { return what_; }
  // The parent's ends of the output pipes (non-blocking; -1 when not piped), for a caller that
  // poll()s several children; EOF means the child closed it.
  int stdout_fd() const { return stdout_fd_; }
  int stderr_fd() const { return stderr_fd_; }

  // Writes all of `data` to the child's stdin before `timeout`; throws if the child exited,
  // closed its stdin, or stopped reading.
  void write_all(const std::string& data, std::chrono::milliseconds timeout);
  // Reads one line (without the newline) from the child's stdout before `timeout`; throws
  // on timeout (the child is killed), on end of output (with the child's exit status), or
  // when a line grows past max_bytes.
  std::string read_line(std::chrono::milliseconds timeout, size_t max_bytes = 64u << 20);

  // Non-blocking: true while the child runs.
  bool running();
  // SIGTERM, then SIGKILL after `grace`; reaps the child. Safe to call twice.
  void terminate(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));
  // "exited with status 3" / "was killed by signal 9" / "is still running".
  std::string status_text();
  // True once the child has exited with status 0.
  bool succeeded();

 private:
  void reap(bool block);
  void wait_for_exit(std::chrono::milliseconds limit);
  std::string what_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1, stdout_fd_ = -1, stderr_fd_ = -1;
  bool reaped_ = false;
  int wait_status_ = 0;
  std::string buffer_;  // bytes read past the last returned line
};

}  // namespace lathe
