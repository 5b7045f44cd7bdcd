// lathe: one binary, many subcommands. Errors a user can fix (lathe::Error) print one line
// and exit 1; flag errors exit 2 as CLI11 decides.
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "core/error.h"
#include "core/runtime.h"

int main(int argc, char** argv) {
  lathe::prepare_process_environment(argc, argv);

  CLI::App app{"lathe — LoRA/GRPO fine-tuning and vLLM-compatible serving on LibTorch"};
  app.require_subcommand(1);
  lathe::cli::register_tokenize(app);
  lathe::cli::register_generate(app);
  lathe::cli::register_init_model(app);
  lathe::cli::register_data(app);
  lathe::cli::register_merge(app);
  lathe::cli::register_sft(app);
  lathe::cli::register_data_inspect(app);
  lathe::cli::register_grpo(app);
  lathe::cli::register_serve(app);
  lathe::cli::register_agent(app);
  lathe::cli::register_pipeline(app);
  lathe::cli::register_launch(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lathe::Error& e) {
    std::fprintf(stderr, "lathe: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "lathe: internal tensor error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lathe: %s\n", e.what());
    return 1;
  }
  return 0;
}
