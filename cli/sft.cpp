// `lathe sft --config FILE [--run-dir DIR] [--resume] [key.path=value ...]` runs the SFT recipe;
// `lathe sft --config-docs` prints the key table of docs/config.md;
// `lathe data inspect --model DIR --data FILE [--row N]` shows what a row trains on.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/config.h"
#include "core/error.h"
#include "model/model_io.h"
#include "train/sft.h"
#include "train/sft_data.h"

namespace lathe::cli {

void register_sft(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("sft", "supervised fine-tuning (LoRA or full) from a YAML config");
  auto config_path = std::make_shared<std::string>();
  auto run_dir = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto resume = std::make_shared<bool>(false);
  auto docs = std::make_shared<bool>(false);
  cmd->add_option("--config", *config_path, "YAML config (configs/sft-tiny.yaml)");
  cmd->add_option("--run-dir", *run_dir, "run folder (default: run.dir, or runs/<run.name>)");
  cmd->add_flag("--resume", *resume, "continue from the newest checkpoint in the run folder");
  cmd->add_flag("--config-docs", *docs, "print every config key as a markdown table and exit");
  cmd->add_option("overrides", *overrides, "key.path=value overrides");
  auto model_flags = std::make_shared<RecipeModelFlags>();
  add_recipe_model_flags(*cmd, *model_flags);
  cmd->callback([=] {
    if (*docs) {
      std::cout << sft_config_schema().markdown();
      return;
    }
    if (config_path->empty()) throw Error("sft: --config FILE is required");
    append_recipe_model_overrides(*model_flags, *overrides);
    const Config config = load_config(sft_config_schema(), *config_path, *overrides);
    SftRunOptions options;
    options.run_dir = *run_dir;
    options.resume = *resume;
    const SftResult result = run_sft(config, options);
    if (result.interrupted && result.signal != 0) std::exit(128 + result.signal);
  });
}

void register_data_inspect(CLI::App& app) {
  // `lathe data` may already exist (the dataset pipeline's commands); inspect joins it.
  CLI::App* data = nullptr;
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == "data") data = sub;
  if (!data) data = app.add_subcommand("data", "datasets");
  CLI::App* cmd = data->add_subcommand("inspect", "print an SFT row with its trained tokens highlighted");
  auto model_dir = std::make_shared<std::string>();
  auto data_path = std::make_shared<std::string>();
  auto row = std::make_shared<int64_t>(1);
  auto train_on_prompt = std::make_shared<bool>(false);
  auto chat_template = std::make_shared<std::string>();
  cmd->add_option("--model", *model_dir, "model folder (tokenizer and chat template)")->required();
  cmd->add_option("--data", *data_path, "JSONL file")->required();
  cmd->add_option("--row", *row, "1-based row number (blank lines not counted)")->check(CLI::PositiveNumber);
  cmd->add_flag("--train-on-prompt", *train_on_prompt, "mark prompt tokens as targets too");
  cmd->add_option("--chat-template", *chat_template, "plain|chatml|llama3|llama2|mistral (default: the model's)");
  cmd->callback([=] {
    auto tokenizer = load_tokenizer(*model_dir);
    const ChatTemplate chat =
        load_chat_template(*model_dir, tokenizer->eos_text(), tokenizer->bos_text(), *chat_template);
    std::ifstream in(*data_path);
    if (!in) throw Error("cannot read " + *data_path);
    std::string line;
    int64_t seen = 0;
    for (int64_t number = 1; std::getline(in, line); ++number) {
      if (line.find_first_not_of(" \t\r") == std::string::npos || ++seen != *row) continue;
      SftDataOptions options;
      options.train_on_prompt = *train_on_prompt;
      options.add_bos = tokenizer->add_bos_token();
      const std::string where = *data_path + ":" + std::to_string(number);
      SftRow r = tokenize_segments(sft_row_segments(line, chat, tokenizer->eos_text(), where), *tokenizer, options);
      std::cout << where << "\n" << format_sft_row(r, *tokenizer, ::isatty(STDOUT_FILENO));
      return;
    }
    throw Error(*data_path + " has " + std::to_string(seen) + " rows; --row " + std::to_string(*row) + " is past the end");
  });
}

}  // namespace lathe::cli
