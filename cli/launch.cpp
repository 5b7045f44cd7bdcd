// `lathe launch --nproc N [--master-port P] [--grace-seconds S] -- COMMAND ...`: N local ranks
// with torchrun's environment (core/launch.h), e.g. `lathe launch --nproc 2 -- lathe sft --config F`.
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "core/launch.h"

namespace lathe::cli {

void register_launch(CLI::App& app) {
  auto opts = std::make_shared<LaunchOptions>();
  auto grace = std::make_shared<double>(10.0);
  auto* cmd = app.add_subcommand("launch", "run N local processes with torchrun's environment (data-parallel sft/grpo)");
  cmd->add_option("--nproc", opts->nproc, "processes (ranks) to start")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--master-port", opts->master_port, "rendezvous port on 127.0.0.1 (default: a free one)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--grace-seconds", *grace, "after a rank fails, how long the others get to exit before SIGKILL")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("command", opts->command, "the command each rank runs, after `--` (\"lathe\" = this binary)")
      ->required();
  cmd->callback([opts, grace] {
    opts->grace = std::chrono::milliseconds(static_cast<int64_t>(*grace * 1000));
    const int code = launch_local(*opts);
    if (code != 0) std::exit(code);
  });
}

}  // namespace lathe::cli
