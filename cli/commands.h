// The `lathe` subcommands. Each cli/<name>.cpp registers one (flags + a callback that calls
// the libraries); main.cpp wires them up. No logic here that a test would want to reach.
#pragma once
#include <CLI/CLI.hpp>

namespace lathe::cli {

void register_tokenize(CLI::App& app);
void register_generate(CLI::App& app);
void register_init_model(CLI::App& app);
void register_data(CLI::App& app);
void register_merge(CLI::App& app);
void register_sft(CLI::App& app);
void register_data_inspect(CLI::App& app);  // after register_data: joins `lathe data`
void register_grpo(CLI::App& app);            // also `lathe rewards score`
void register_serve(CLI::App& app);
void register_agent(CLI::App& app);
void register_pipeline(CLI::App& app);        // also `lathe report`
void register_launch(CLI::App& app);           // data-parallel ranks on one machine

}  // namespace lathe::cli
