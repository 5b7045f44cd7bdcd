// The pipeline's strict config (core/config.h) and the configs of the recipes its stages run.
//
// The pipeline declares its own keys (run, base, data, corpus, tokenizer, eval, report) and
// takes the SFT and GRPO recipes' keys whole, under the stage that runs them:
// `pretrain.<sft key>` (full-parameter training from random weights), `sft.<sft key>` (LoRA
// on the base) and `grpo.<grpo key>` (the GRPO recipe's own grpo.* keys keep their names:
// grpo.beta, grpo.num_generations; its other sections move under grpo.: grpo.training.lr,
// grpo.rewards.use). Keys the pipeline sets itself (run folders, data files, model paths, the
// tokenizer, device and threads) are not offered. Each recipe config is then resolved through
// the recipe's own schema, so it is checked exactly as `lathe sft` / `lathe grpo` would.
#pragma once
#include <string>
#include <vector>

#include "core/config.h"
#include "data/pipeline.h"
#include "data/sql_corpus.h"
#include "model/sentencepiece_trainer.h"

namespace lathe::pipeline {

// In the order they run: data corpus tokenizer pretrain sft grpo eval report.
const std::vector<std::string>& stage_names();

const ConfigSchema& pipeline_config_schema();

// The data recipe's config from data.db.*, data.collect.*, data.label.*, data.split.*.
data::DataBuildConfig data_build_config(const Config& config);
data::CorpusOptions corpus_options(const Config& config);
SentencePieceTrainOptions tokenizer_options(const Config& config);

// Recipe configs for a stage, with the paths the pipeline fills in.
Config pretrain_recipe_config(const Config& config, const std::string& run_dir, const std::string& train_file,
                              const std::string& validation_file, const std::string& tokenizer_dir);
Config sft_recipe_config(const Config& config, const std::string& run_dir, const std::string& base_dir,
                         const std::string& train_file, const std::string& validation_file);
// GRPO over model_dir: continuing the adapter in adapter_dir, or (empty) a new one from grpo.lora.*.
Config grpo_recipe_config(const Config& config, const std::string& run_dir, const std::string& model_dir,
                          const std::string& adapter_dir, const std::string& train_file, const std::string& database);

// "key: value" lines of every key that starts with one of `prefixes`, in declaration order:
// the text a stage's hash covers.
std::string config_section_text(const Config& config, const std::vector<std::string>& prefixes);

}  // namespace lathe::pipeline
