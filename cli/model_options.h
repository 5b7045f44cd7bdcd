// Flags shared by every command that runs a model, declared once.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "model/model_io.h"

namespace lathe::cli {

struct ModelOptions {
  std::string model_dir;
  std::string device = "cpu";
  std::string dtype = "f32";
  int threads = 0;
  std::string chat_template;  // override: plain | chatml | llama3 | llama2 | mistral
};

// Adds --model, --device, --dtype, --threads, --chat-template to `command`.
void add_model_options(CLI::App& command, ModelOptions& options, bool model_required = true);

// --device, --dtype and --threads on a recipe command (sft, grpo): each given flag becomes a
// config override of the recipe's key, placed after the key=value ones so the flag wins.
struct RecipeModelFlags {
  std::string device, dtype, threads;  // "" = not given
};
void add_recipe_model_flags(CLI::App& command, RecipeModelFlags& flags);
// The recipes share the keys training.device, model.dtype and training.threads.
void append_recipe_model_overrides(const RecipeModelFlags& flags, std::vector<std::string>& overrides);

// Applies --threads and loads the model folder on the requested device and dtype.
LoadedModel load_model_from_options(const ModelOptions& options);

}  // namespace lathe::cli
