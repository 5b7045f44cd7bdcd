// `lathe launch`: N local processes with torchrun's environment, for users without torchrun.
// Each child gets RANK = LOCAL_RANK = r, WORLD_SIZE = LOCAL_WORLD_SIZE = N, GROUP_RANK = 0,
// MASTER_ADDR = 127.0.0.1 and MASTER_PORT (a free port unless given). Their stdout and stderr
// lines come out on lathe's stdout and stderr prefixed "[rank r] ". When one exits non-zero or is
// killed, the others get SIGTERM (SIGKILL after a grace period) and the launch fails naming
// that rank, as torchrun's agent does for a local group. SIGINT/SIGTERM to the launcher are
// passed to every rank (the recipes then save a checkpoint and stop).
// Departures from torchrun: one machine only; no restarts (--max-restarts) or elastic
// membership; output is always prefixed (torchrun's --tee).
#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace lathe {

struct LaunchOptions {
  int nproc = 1;
  int master_port = 0;                              // 0 = a free port on 127.0.0.1
  std::vector<std::string> command;                 // "lathe" means this very binary
  std::chrono::milliseconds grace{10000};           // SIGTERM -> SIGKILL for the survivors
};

// Runs the group to the end. Returns 0 when every rank exited 0, 128 + signal when the launch
// itself was interrupted; throws lathe::Error naming the first rank that failed.
int launch_local(const LaunchOptions& options);

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
int free_local_port();

}  // namespace lathe
