// lathe init-model --preset NAME --out DIR [--seed S] [--tokenizer-from DIR | --corpus FILE]
// Writes a randomly initialised model folder in Hugging Face layout, with a tokenizer:
// copied from another model folder, or a byte-level BPE trained here on a corpus.
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/runtime.h"
#include "model/bpe_trainer.h"
#include "model/model_init.h"
#include "model/model_io.h"
#include "model/tokenizer.h"

namespace lathe::cli {

namespace fs = std::filesystem;

namespace {

struct InitOptions {
  std::string preset = "tiny", out, tokenizer_from, corpus, dtype = "f32";
  uint64_t seed = 0;
  int merges = 400;
};

// Used when neither --tokenizer-from nor --corpus is given: enough text for a few hundred
// merges over English, Chinese and SQL.
const char* kDefaultCorpus =
    "Once upon a time there was a little car dealer. Every morning the dealer counted the cars in stock. "
    "SELECT COUNT(*) FROM vehicles WHERE status = 'in_stock' AND brand = '宝马'; "
    "SELECT AVG(guide_price) FROM vehicles JOIN stores ON vehicles.store_id = stores.store_id WHERE city = '上海'; "
    "宝马在上海有几辆在库？ 3月以后接车的奔驰还有几辆？ 指导价格最高的车是哪一辆？ 接车日期是哪天？ "
    "How many SUVs are in stock in Shanghai? What is the average guide price of electric cars? "
    "<reasoning>Count the vehicles that match the filters.</reasoning>\n<answer>\nSELECT 1;\n</answer>\n";

void copy_tokenizer_files(const std::string& from, const std::string& to) {
  bool any = false;
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                           "generation_config.json"}) {
    const fs::path src = fs::path(from) / name;
    if (fs::exists(src)) {
      write_file_atomic((fs::path(to) / name).string(), read_file(src.string()));
      any = true;
    }
  }
  if (!any) fail(from + ": no tokenizer.json or tokenizer.model to copy");
}

}  // namespace

void register_init_model(CLI::App& app) {
  auto o = std::make_shared<InitOptions>();
  auto* cmd = app.add_subcommand("init-model", "Write a randomly initialised model folder (HF layout)");
  cmd->add_option("--preset", o->preset, "shape: tiny or qwen2.5-0.5b-shape")->capture_default_str();
  cmd->add_option("--out", o->out, "folder to write")->required();
  cmd->add_option("--seed", o->seed, "weight seed")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "stored dtype: f32, bf16 or f16")->capture_default_str();
  auto* from = cmd->add_option("--tokenizer-from", o->tokenizer_from, "copy the tokenizer of this model folder");
  cmd->add_option("--corpus", o->corpus, "train a byte-level BPE tokenizer on this text file")->excludes(from);
  cmd->add_option("--merges", o->merges, "BPE merges to learn")->capture_default_str();
  cmd->callback([o] {
    fs::create_directories(o->out);
    ModelConfig config = preset_config(o->preset);
    if (!o->tokenizer_from.empty()) {
      copy_tokenizer_files(o->tokenizer_from, o->out);
    } else {
      BpeTrainOptions train;
      train.num_merges = o->merges;
      const std::string corpus = o->corpus.empty() ? std::string(kDefaultCorpus) : read_file(o->corpus);
      save_bpe_model(train_bpe(corpus, train), o->out);
    }
    auto tokenizer = load_tokenizer(o->out);
    // The embedding matches the tokenizer, so every id the model can emit decodes.
    config.vocab_size = tokenizer->vocab_size();
    config.bos_token_id.reset();
    if (tokenizer->bos_id()) config.bos_token_id = *tokenizer->bos_id();
    config.eos_token_ids.clear();
    if (tokenizer->eos_id()) config.eos_token_ids = {*tokenizer->eos_id()};
    CausalLM model(config);
    init_random_weights(model, o->seed);
    save_model(model, o->out, parse_dtype(o->dtype));
    std::cout << "wrote " << o->out << " (" << o->preset << ", vocab " << config.vocab_size << ", seed " << o->seed
              << ")\n";
  });
}

}  // namespace lathe::cli
