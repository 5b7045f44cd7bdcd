// Fuzz target: a YAML config file and `key.path=value` overrides (the input's lines after a
// "----" line), resolved through every command's schema — sft, grpo, pipeline, agent — and
// through the data recipe's own parser, then turned into the typed options each command
// builds from them.
// Invariant: a resolved config dumps to YAML (the run folder's config.yaml) that resolves
// again to the same values; `lathe sft` and `lathe grpo` compare that file on resume.
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "agent/agent.h"
#include "core/config.h"
#include "data/pipeline.h"
#include "pipeline/pipeline_config.h"
#include "rl/grpo.h"
#include "tests/fuzz/fuzz_target.h"
#include "train/sft.h"

namespace lathe::fuzz {

namespace {

std::vector<std::string> override_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

Config resolve_and_round_trip(const ConfigSchema& schema, const std::string& yaml,
                              const std::vector<std::string>& overrides) {
  Config config = resolve_config(schema, yaml, "fuzz.yaml", overrides);
  const std::string saved = config.to_yaml();
  std::vector<std::string> changed;
  try {
    changed = config.differences(resolve_config(schema, saved, "config.yaml", {}));
  } catch (const Error& e) {
    std::fprintf(stderr, "lathe fuzz: a resolved config's YAML does not resolve again: %s\n%s\n", e.what(),
                 saved.c_str());
    std::abort();
  }
  if (!changed.empty()) {
    std::fprintf(stderr, "lathe fuzz: key %s changes when its config.yaml is read back:\n%s\n", changed[0].c_str(),
                 saved.c_str());
    std::abort();
  }
  return config;
}

}  // namespace

void fuzz_yaml_config(const std::string& input) {
  const std::vector<std::string> parts = split_parts(input, 2);
  const std::string& yaml = parts[0];
  const std::vector<std::string> overrides = parts.size() > 1 ? override_lines(parts[1]) : std::vector<std::string>{};

  unless_rejected([&] { resolve_and_round_trip(sft_config_schema(), yaml, overrides); });
  unless_rejected([&] { resolve_and_round_trip(grpo_config_schema(), yaml, overrides); });
  unless_rejected([&] { agent::agent_config_from(resolve_and_round_trip(agent::agent_config_schema(), yaml, overrides)); });
  unless_rejected([&] { data::parse_data_build_config(yaml, "fuzz.yaml"); });
  unless_rejected([&] {
    const Config config = resolve_and_round_trip(pipeline::pipeline_config_schema(), yaml, overrides);
    pipeline::data_build_config(config);
    pipeline::corpus_options(config);
    pipeline::tokenizer_options(config);
    unless_rejected([&] { pipeline::pretrain_recipe_config(config, "run/pretrain", "train.jsonl", "val.jsonl", "tok"); });
    unless_rejected([&] { pipeline::sft_recipe_config(config, "run/sft", "base", "train.jsonl", "val.jsonl"); });
    unless_rejected(
        [&] { pipeline::grpo_recipe_config(config, "run/grpo", "base", "adapter", "train.jsonl", "db.sqlite"); });
  });
}

}  // namespace lathe::fuzz
