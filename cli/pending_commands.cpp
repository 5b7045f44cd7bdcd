// Temporary: subcommands still being written.
#include "cli/commands.h"
namespace lathe::cli {
void register_tokenize(CLI::App& app) { app.add_subcommand("tokenize", "print token ids"); }
void register_generate(CLI::App& app) { app.add_subcommand("generate", "generate text"); }
void register_init_model(CLI::App& app) { app.add_subcommand("init-model", "random model"); }
}
