// `lathe pipeline --config FILE --run-dir DIR [key.path=value ...]` runs the main job end to end
// (pipeline/pipeline.h); `lathe pipeline --config-docs` prints its keys; `lathe report RUN_DIR`
// writes RUN_DIR/report.html.
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "core/config.h"
#include "core/error.h"
#include "pipeline/pipeline.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/report.h"

namespace lathe::cli {

void register_pipeline(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("pipeline", "the whole loop: data, tokenizer, pretraining, SFT, GRPO, eval, report");
  auto config_path = std::make_shared<std::string>();
  auto run_dir = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto docs = std::make_shared<bool>(false);
  cmd->add_option("--config", *config_path, "YAML config (configs/inventory-tiny.yaml)");
  cmd->add_option("--run-dir", *run_dir, "run folder; rerunning with the same one resumes");
  cmd->add_flag("--config-docs", *docs, "print every config key as a markdown table and exit");
  cmd->add_option("overrides", *overrides, "key.path=value overrides");
  cmd->callback([=] {
    if (*docs) {
      std::cout << pipeline::pipeline_config_schema().markdown();
      return;
    }
    if (config_path->empty()) throw Error("pipeline: --config FILE is required");
    if (run_dir->empty()) throw Error("pipeline: --run-dir DIR is required");
    const Config config = load_config(pipeline::pipeline_config_schema(), *config_path, *overrides);
    pipeline::PipelineOptions options;
    options.run_dir = *run_dir;
    const pipeline::PipelineResult result = pipeline::run_pipeline(config, options);
    std::cout << pipeline::format_pipeline_summary(result);
    if (result.interrupted) std::exit(result.signal ? 128 + result.signal : 1);
  });

  CLI::App* report = app.add_subcommand("report", "write RUN_DIR/report.html from a pipeline run folder");
  auto report_dir = std::make_shared<std::string>();
  auto options = std::make_shared<pipeline::ReportOptions>();
  report->add_option("run_dir", *report_dir, "the pipeline's run folder")->required();
  report->add_option("--rollouts", options->rollouts, "GRPO completions shown")->check(CLI::NonNegativeNumber);
  report->add_option("--predictions", options->predictions, "eval answers shown per model")->check(CLI::NonNegativeNumber);
  report->callback([=] { std::cout << pipeline::write_report(*report_dir, *options) << "\n"; });
}

}  // namespace lathe::cli
