// The local launcher: see launch.h.
#include "core/launch.h"

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>

#include "core/error.h"
#include "core/subprocess.h"

namespace lathe {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<int> g_launch_signal{0};
void on_launch_signal(int sig) { g_launch_signal.store(sig); }

// One child's output stream: whole lines go out prefixed; a last unterminated line at EOF too.
struct Stream {
  int fd = -1;
  FILE* out = nullptr;
  std::string prefix;
  std::string pending;
  bool open() const { return fd >= 0; }

  void emit(const std::string& line) {
    std::fwrite(prefix.data(), 1, prefix.size(), out);
    std::fwrite(line.data(), 1, line.size(), out);
    std::fputc('\n', out);
    std::fflush(out);
  }
  // Reads what is there; false at EOF.
  bool drain() {
    char chunk[65536];
    for (;;) {
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n > 0) {
        pending.append(chunk, static_cast<size_t>(n));
        size_t newline;
        while ((newline = pending.find('\n')) != std::string::npos) {
          emit(pending.substr(0, newline));
          pending.erase(0, newline + 1);
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (!pending.empty()) emit(pending);
      pending.clear();
      fd = -1;  // the Subprocess owns and closes the descriptor
      return false;
    }
  }
};

std::string self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "lathe";
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail(std::string("cannot open a socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    fail(std::string("cannot find a free loopback port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

int launch_local(const LaunchOptions& options) {
  if (options.nproc < 1) fail("launch: --nproc must be >= 1, got " + std::to_string(options.nproc));
  if (options.command.empty()) fail("launch: no command: lathe launch --nproc N -- lathe sft --config FILE");
  if (options.master_port < 0 || options.master_port > 65535)
    fail("launch: --master-port must be in [0, 65535], got " + std::to_string(options.master_port));
  const int port = options.master_port > 0 ? options.master_port : free_local_port();
  std::vector<std::string> argv = options.command;
  if (argv[0] == "lathe") argv[0] = self_executable();

  g_launch_signal.store(0);
  struct sigaction action {}, old_int {}, old_term {};
  action.sa_handler = on_launch_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &old_int);
  ::sigaction(SIGTERM, &action, &old_term);
  struct RestoreSignals {
    struct sigaction i, t;
    ~RestoreSignals() {
      ::sigaction(SIGINT, &i, nullptr);
      ::sigaction(SIGTERM, &t, nullptr);
    }
  } restore{old_int, old_term};

  std::vector<std::unique_ptr<Subprocess>> ranks;
  std::vector<Stream> streams;  // 2 per rank: stdout, stderr
  for (int r = 0; r < options.nproc; ++r) {
    Subprocess::Options o;
    o.pipe_stdin = false;
    o.pipe_stdout = true;
    o.pipe_stderr = true;
    const std::string n = std::to_string(options.nproc);
    o.env = {"RANK=" + std::to_string(r), "LOCAL_RANK=" + std::to_string(r), "WORLD_SIZE=" + n,
             "LOCAL_WORLD_SIZE=" + n, "GROUP_RANK=0", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)};
    ranks.push_back(std::make_unique<Subprocess>(argv, "rank " + std::to_string(r), o));
    const std::string prefix = "[rank " + std::to_string(r) + "] ";
    streams.push_back({ranks.back()->stdout_fd(), stdout, prefix, {}});
    streams.push_back({ranks.back()->stderr_fd(), stderr, prefix, {}});
  }

  int failed = -1;           // the first rank that failed
  std::string failed_status;
  std::string stopped;       // the ranks still running then, which the launch stopped
  int forwarded = 0;         // the signal passed to the ranks
  std::optional<Clock::time_point> kill_at;
  const auto signal_all = [&](int sig) {
    for (auto& r : ranks)
      if (r->running()) ::kill(r->pid(), sig);
  };
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<size_t> which;
    for (size_t i = 0; i < streams.size(); ++i)
      if (streams[i].open()) {
        fds.push_back({streams[i].fd, POLLIN, 0});
        which.push_back(i);
      }
    if (!fds.empty() && ::poll(fds.data(), fds.size(), 100) > 0) {
      for (size_t k = 0; k < fds.size(); ++k)
        if (fds[k].revents != 0) streams[which[k]].drain();
    } else if (fds.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }

    if (const int sig = g_launch_signal.exchange(0); sig != 0) {
      forwarded = sig;
      signal_all(sig);
      if (!kill_at) kill_at = Clock::now() + options.grace;
    }
    bool any_running = false;
    for (int r = 0; r < options.nproc; ++r) {
      if (ranks[r]->running()) {
        any_running = true;
        continue;
      }
      if (failed < 0 && !ranks[r]->succeeded()) {
        failed = r;
        failed_status = ranks[r]->status_text();
        for (int o = 0; o < options.nproc; ++o)
          if (ranks[o]->running()) stopped += (stopped.empty() ? "" : ", ") + std::to_string(o);
        if (forwarded == 0) {
          signal_all(SIGTERM);
          kill_at = Clock::now() + options.grace;
        }
      }
    }
    if (kill_at && Clock::now() >= *kill_at) {
      signal_all(SIGKILL);
      kill_at.reset();
    }
    if (!any_running) {
      // What the ranks wrote before exiting is still in the pipes (a rank's own children may
      // keep them open: no waiting for EOF).
      for (auto& s : streams)
        if (s.open()) s.drain();
      break;
    }
  }
  if (forwarded != 0) return 128 + forwarded;
  if (failed >= 0)
    fail("launch: rank " + std::to_string(failed) + " " + failed_status +
         (stopped.empty() ? "" : "; stopped rank(s) " + stopped));
  return 0;
}

}  // namespace lathe
