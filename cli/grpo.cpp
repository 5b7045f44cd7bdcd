// `lathe grpo --config FILE [--run-dir DIR] [--resume] [key.path=value ...]` runs the GRPO
// recipe; `lathe grpo --config-docs` prints its keys; `lathe rewards score --config FILE
// --input rows.jsonl` prints each configured reward's value per row (rows: "completion" plus
// the dataset columns), to check a reward setup before a long run.
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/config.h"
#include "core/error.h"
#include "rl/grpo.h"
#include "rl/rewards.h"

namespace lathe::cli {

void register_grpo(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("grpo", "GRPO on a LoRA adapter, rewarded by named reward functions");
  auto config_path = std::make_shared<std::string>();
  auto run_dir = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto resume = std::make_shared<bool>(false);
  auto docs = std::make_shared<bool>(false);
  cmd->add_option("--config", *config_path, "YAML config (configs/grpo-tiny.yaml)");
  cmd->add_option("--run-dir", *run_dir, "run folder (default: run.dir, or runs/<run.name>)");
  cmd->add_flag("--resume", *resume, "continue from the newest checkpoint in the run folder");
  cmd->add_flag("--config-docs", *docs, "print every config key as a markdown table and exit");
  cmd->add_option("overrides", *overrides, "key.path=value overrides");
  auto model_flags = std::make_shared<RecipeModelFlags>();
  add_recipe_model_flags(*cmd, *model_flags);
  cmd->callback([=] {
    if (*docs) {
      std::cout << grpo_config_schema().markdown();
      return;
    }
    if (config_path->empty()) throw Error("grpo: --config FILE is required");
    append_recipe_model_overrides(*model_flags, *overrides);
    const Config config = load_config(grpo_config_schema(), *config_path, *overrides);
    GrpoRunOptions options;
    options.run_dir = *run_dir;
    options.resume = *resume;
    const GrpoResult result = run_grpo(config, options);
    if (result.interrupted && result.signal != 0) std::exit(128 + result.signal);
  });

  CLI::App* rewards = app.add_subcommand("rewards", "reward functions");
  CLI::App* score = rewards->add_subcommand("score", "print each configured reward per row as JSON lines");
  auto input = std::make_shared<std::string>();
  auto score_config = std::make_shared<std::string>();
  auto score_overrides = std::make_shared<std::vector<std::string>>();
  score->add_option("--config", *score_config, "GRPO YAML config (its rewards.* keys are used)")->required();
  score->add_option("--input", *input, "JSONL rows: {\"completion\", ...dataset columns}")->required();
  score->add_option("overrides", *score_overrides, "key.path=value overrides");
  score->callback([=] {
    const Config config = load_config(grpo_config_schema(), *score_config, *score_overrides);
    std::vector<rl::WeightedReward> fns = make_configured_rewards(config);
    std::ifstream in(*input);
    if (!in) throw Error("rewards score: cannot read " + *input);
    std::string line;
    for (int64_t number = 1; std::getline(in, line); ++number) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = *input + ":" + std::to_string(number);
      nlohmann::json row;
      try {
        row = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw Error(where + ": not JSON (" + std::string(e.what()) + ")");
      }
      if (!row.is_object() || !row.contains("completion") || !row["completion"].is_string())
        throw Error(where + ": a row needs a string \"completion\"");
      const rl::GroupScores s = rl::score_group(fns, row, {row["completion"].get<std::string>()});
      nlohmann::json out{{"line", number}, {"reward", s.total[0]}};
      if (row.contains("id")) out["id"] = row["id"];
      for (size_t k = 0; k < fns.size(); ++k) out["rewards"][fns[k].name] = s.per_reward[k][0];
      std::cout << out.dump() << "\n";
    }
  });
}

}  // namespace lathe::cli
