// fork/exec with pipes and poll()-based deadlines. Pipes are close-on-exec and non-blocking
// on lathe's side; SIGPIPE is not raised on a write to a dead child (MSG-less pipes need the
// signal ignored for the duration of the write).
#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "core/error.h"

namespace lathe {
namespace {

using Clock = std::chrono::steady_clock;

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// Ignores SIGPIPE while alive (a write to a dead child then fails with EPIPE).
class IgnoreSigpipe {
 public:
  IgnoreSigpipe() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGPIPE, &ignore, &old_);
  }
  ~IgnoreSigpipe() { ::sigaction(SIGPIPE, &old_, nullptr); }

 private:
  struct sigaction old_ {};
};

}  // namespace

Subprocess::Subprocess(const std::vector<std::string>& argv, std::string what, Options options)
    : what_(std::move(what)) {
  if (argv.empty()) fail(what_ + ": empty command");
  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, exec_pipe[2] = {-1, -1};
  if ((options.pipe_stdin && ::pipe2(in_pipe, O_CLOEXEC) != 0) ||
      (options.pipe_stdout && ::pipe2(out_pipe, O_CLOEXEC) != 0) ||
      (options.pipe_stderr && ::pipe2(err_pipe, O_CLOEXEC) != 0) || ::pipe2(exec_pipe, O_CLOEXEC) != 0)
    fail(what_ + ": cannot create pipes: " + std::strerror(errno));

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The child's environment, built before fork (the child may only make async-signal-safe calls).
  std::vector<std::string> env_entries = options.env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& o : options.env) overridden |= o.compare(0, name.size() + 1, name + "=") == 0;
    if (!overridden) env_entries.push_back(entry);
  }
  std::vector<char*> envp;
  for (auto& e : env_entries) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int output_fd = -1;
  if (!options.output_path.empty()) {
    if (options.pipe_stdout) fail(what_ + ": output_path and pipe_stdout exclude each other");
    output_fd = ::open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (output_fd < 0) fail(what_ + ": cannot open " + options.output_path + ": " + std::strerror(errno));
  }
  const pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0) fail(what_ + ": fork failed: " + std::strerror(errno));
  if (pid_ == 0) {
    // Child: only async-signal-safe calls until exec.
    if (options.stop_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    }
    const int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(options.pipe_stdin ? in_pipe[0] : devnull, 0);
    if (options.pipe_stdout) ::dup2(out_pipe[1], 1);
    if (options.quiet_stderr) ::dup2(devnull, 2);
    if (options.pipe_stderr) ::dup2(err_pipe[1], 2);
    if (output_fd >= 0) {
      ::dup2(output_fd, 1);
      ::dup2(output_fd, 2);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, nullptr);
    ::execvpe(args[0], args.data(), envp.data());
    const int err = errno;
    (void)!::write(exec_pipe[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(exec_pipe[1]);
  if (output_fd >= 0) ::close(output_fd);
  if (options.pipe_stdin) ::close(in_pipe[0]);
  if (options.pipe_stdout) ::close(out_pipe[1]);
  if (options.pipe_stderr) ::close(err_pipe[1]);
  stdin_fd_ = options.pipe_stdin ? in_pipe[1] : -1;
  stdout_fd_ = options.pipe_stdout ? out_pipe[0] : -1;
  stderr_fd_ = options.pipe_stderr ? err_pipe[0] : -1;
  // The exec pipe closes on a successful exec; otherwise it carries exec's errno.
  int err = 0;
  ssize_t n;
  do n = ::read(exec_pipe[0], &err, sizeof err); while (n < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    reap(true);
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
    if (stderr_fd_ >= 0) ::close(stderr_fd_);
    stdin_fd_ = stdout_fd_ = stderr_fd_ = -1;
    fail(what_ + ": cannot run '" + argv[0] + "': " + std::strerror(err));
  }
  if (stdin_fd_ >= 0) set_nonblocking(stdin_fd_);
  if (stdout_fd_ >= 0) set_nonblocking(stdout_fd_);
  if (stderr_fd_ >= 0) set_nonblocking(stderr_fd_);
}

Subprocess::~Subprocess() {
  terminate(std::chrono::milliseconds(500));
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  if (stderr_fd_ >= 0) ::close(stderr_fd_);
}

void Subprocess::write_all(const std::string& data, std::chrono::milliseconds timeout) {
  if (stdin_fd_ < 0) fail(what_ + ": its stdin is not a pipe");
  IgnoreSigpipe guard;
  const auto deadline = Clock::now() + timeout;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(stdin_fd_, data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      const std::string reason = std::strerror(errno);
      wait_for_exit(std::chrono::milliseconds(500));
      fail(what_ + " stopped reading its input (" + reason + "); it " + status_text());
    }
    pollfd p{stdin_fd_, POLLOUT, 0};
    const int ms = remaining_ms(deadline);
    if (ms == 0 || ::poll(&p, 1, ms) == 0) {
      terminate();
      fail(what_ + " did not read its input within " + std::to_string(timeout.count()) + " ms; killed");
    }
  }
}

std::string Subprocess::read_line(std::chrono::milliseconds timeout, size_t max_bytes) {
  if (stdout_fd_ < 0) fail(what_ + ": its stdout is not a pipe");
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    if (buffer_.size() > max_bytes) {
      terminate();
      fail(what_ + " wrote a line longer than " + std::to_string(max_bytes) + " bytes; killed");
    }
    char chunk[65536];
    const ssize_t n = ::read(stdout_fd_, chunk, sizeof chunk);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      wait_for_exit(std::chrono::milliseconds(500));  // so the exit status can be reported
      fail(what_ + " closed its output without answering; it " + status_text());
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) fail(what_ + ": read failed: " + std::strerror(errno));
    pollfd p{stdout_fd_, POLLIN, 0};
    const int ms = remaining_ms(deadline);
    if (ms == 0 || ::poll(&p, 1, ms) == 0) {
      terminate();
      fail(what_ + " did not answer within " + std::to_string(timeout.count()) + " ms; killed");
    }
  }
}

void Subprocess::reap(bool block) {
  if (reaped_ || pid_ <= 0) return;
  int status = 0;
  pid_t r;
  do r = ::waitpid(pid_, &status, block ? 0 : WNOHANG); while (r < 0 && errno == EINTR);
  if (r == pid_) {
    reaped_ = true;
    wait_status_ = status;
  }
}

void Subprocess::wait_for_exit(std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (running() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

bool Subprocess::running() {
  reap(false);
  return pid_ > 0 && !reaped_;
}

void Subprocess::terminate(std::chrono::milliseconds grace) {
  if (!running()) return;
  ::kill(pid_, SIGTERM);
  wait_for_exit(grace);
  if (running()) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

bool Subprocess::succeeded() {
  reap(false);
  return reaped_ && WIFEXITED(wait_status_) && WEXITSTATUS(wait_status_) == 0;
}

std::string Subprocess::status_text() {
  reap(false);
  if (!reaped_) return "is still running";
  if (WIFEXITED(wait_status_)) return "exited with status " + std::to_string(WEXITSTATUS(wait_status_));
  if (WIFSIGNALED(wait_status_)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(wait_status_)) +
                                        " (" + ::strsignal(WTERMSIG(wait_status_)) + ")";
  return "stopped";
}

}  // namespace lathe
