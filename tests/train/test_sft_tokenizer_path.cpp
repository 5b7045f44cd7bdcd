// SFT from random weights with a given tokenizer (tokenizer.path): the run copies it into its
// own tokenizer/ folder, sizes the embedding to it, ships it with the final model, and a
// folder without a tokenizer is an error naming it.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/bpe_trainer.h"
#include "model/model_io.h"
#include "tests/support/test_support.h"
#include "train/sft.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using ::lathe::testing::TempDir;

Config config(const std::string& run_dir, const std::string& tokenizer) {
  return resolve_config(sft_config_schema(), "", "",
                        {"run.dir=" + run_dir, "model.init=random", "model.hidden_size=32", "model.intermediate_size=64",
                         "model.num_layers=1", "model.num_heads=2", "model.num_kv_heads=1", "tokenizer.path=" + tokenizer,
                         "data.train=configs/data/inventory-sft-train.jsonl", "data.max_seq_len=1024",
                         "training.batch_size=2", "training.max_steps=2", "training.threads=2"});
}

TEST(SftGivenTokenizer, UsesAndShipsTheGivenTokenizer) {
  TempDir dir;
  BpeTrainOptions bpe;
  bpe.num_merges = 300;
  fs::create_directories(dir.file("tok"));
  save_bpe_model(train_bpe(read_file("configs/data/inventory-sft-train.jsonl"), bpe), dir.file("tok"));
  SftRunOptions quiet;
  quiet.quiet = true;
  run_sft(config(dir.file("run"), dir.file("tok")), quiet);
  EXPECT_EQ(read_file(dir.file("run/tokenizer/tokenizer.json")), read_file(dir.file("tok/tokenizer.json")));
  EXPECT_EQ(read_file(dir.file("run/model/tokenizer.json")), read_file(dir.file("tok/tokenizer.json")));
  const LoadedModel m = load_model(dir.file("run/model"), torch::kCPU, torch::kFloat32);
  EXPECT_EQ(m.config.vocab_size, load_tokenizer(dir.file("tok"))->vocab_size());
  EXPECT_EQ(m.config.vocab_size, 256 + 300 + 3) << "not the default 400-merge BPE learned from data.train";
}

TEST(SftGivenTokenizer, FolderWithoutTokenizerIsAnError) {
  TempDir dir;
  fs::create_directories(dir.file("empty"));
  SftRunOptions quiet;
  quiet.quiet = true;
  try {
    run_sft(config(dir.file("run"), dir.file("empty")), quiet);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.path: " + dir.file("empty")), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lathe
