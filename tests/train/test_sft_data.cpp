// SFT data: targets sit exactly on the assistant content and the end token (byte-level BPE
// and, where the fixture exists, SentencePiece), prompt/completion rows, train_on_prompt,
// truncation counts, bad rows named by FILE:LINE, epoch plans and collation.
#include <gtest/gtest.h>

#include <fstream>
#include <numeric>
#include <set>

#include "core/error.h"
#include "model/bpe_trainer.h"
#include "model/tokenizer.h"
#include "tests/support/test_support.h"
#include "train/sft_data.h"

namespace lathe {
namespace {

using ::lathe::testing::TempDir;

const char* kRow =
    R"({"messages": [{"role": "system", "content": "Use SQL."}, {"role": "user", "content": "How many bolts?"},)"
    R"( {"role": "assistant", "content": "<answer>\nSELECT COUNT(*) FROM bolts;\n</answer>"},)"
    R"( {"role": "user", "content": "和螺母呢？"}, {"role": "assistant", "content": "SELECT COUNT(*) FROM nuts;"}]})";

// A byte-level BPE learned from a little SQL text, with <|im_end|> as EOS.
std::unique_ptr<Tokenizer> small_bpe(const TempDir& dir) {
  BpeTrainOptions options;
  options.num_merges = 120;
  std::string corpus;
  for (int i = 0; i < 5; ++i) corpus += "How many bolts? SELECT COUNT(*) FROM bolts; <answer>\n</answer> 和螺母呢？\n";
  save_bpe_model(train_bpe(corpus, options), dir.path());
  return load_tokenizer(dir.path());
}

// Bytes of the target tokens and of the others, in order.
std::pair<std::string, std::string> split_text(const SftRow& row, const Tokenizer& tok) {
  std::string targets, others;
  for (std::size_t i = 0; i < row.ids.size(); ++i) (row.target[i] ? targets : others) += tok.token_bytes(row.ids[i]);
  return {targets, others};
}

TEST(SftData, TargetsAreExactlyAssistantContentAndEos) {
  TempDir dir;
  auto tok = small_bpe(dir);
  ChatTemplate chat = load_chat_template(dir.path(), tok->eos_text(), tok->bos_text());
  ASSERT_EQ(tok->eos_text(), "<|im_end|>");
  SftRow row = tokenize_segments(sft_row_segments(kRow, chat, tok->eos_text(), "x:1"), *tok, {});
  auto [targets, others] = split_text(row, *tok);
  EXPECT_EQ(targets, "<answer>\nSELECT COUNT(*) FROM bolts;\n</answer><|im_end|>SELECT COUNT(*) FROM nuts;<|im_end|>");
  EXPECT_EQ(others, "<|system|>\nUse SQL.\n<|user|>\nHow many bolts?\n<|assistant|>\n\n<|user|>\n和螺母呢？\n<|assistant|>\n\n");
  // The EOS token itself is a target, as its own token.
  int eos_targets = 0;
  for (std::size_t i = 0; i < row.ids.size(); ++i) eos_targets += row.target[i] && row.ids[i] == *tok->eos_id();
  EXPECT_EQ(eos_targets, 2);
}

TEST(SftData, TrainOnPromptScoresEveryTokenButTheFirst) {
  TempDir dir;
  auto tok = small_bpe(dir);
  ChatTemplate chat = load_chat_template(dir.path(), tok->eos_text(), tok->bos_text());
  SftDataOptions options;
  options.train_on_prompt = true;
  SftRow row = tokenize_segments(sft_row_segments(kRow, chat, tok->eos_text(), "x:1"), *tok, options);
  EXPECT_EQ(row.target[0], 0);
  EXPECT_EQ(std::accumulate(row.target.begin(), row.target.end(), 0), static_cast<int>(row.ids.size()) - 1);
}

TEST(SftData, PromptCompletionStringsArePlainTextPlusEos) {
  TempDir dir;
  auto tok = small_bpe(dir);
  ChatTemplate chat = load_chat_template(dir.path(), tok->eos_text(), tok->bos_text());
  SftRow row = tokenize_segments(
      sft_row_segments(R"({"prompt": "How many bolts?\n", "completion": "SELECT 1;"})", chat, tok->eos_text(), "x:1"),
      *tok, {});
  auto [targets, others] = split_text(row, *tok);
  EXPECT_EQ(targets, "SELECT 1;<|im_end|>");
  EXPECT_EQ(others, "How many bolts?\n");
}

TEST(SftData, SentencePieceTargetsAlign) {
  LATHE_REQUIRE_FIXTURE(model_dir, "stories260K-hf");
  auto tok = load_tokenizer(model_dir);
  ChatTemplate chat = load_chat_template(model_dir, tok->eos_text(), tok->bos_text());
  SftDataOptions options;
  options.add_bos = true;
  SftRow row = tokenize_segments(
      sft_row_segments(R"({"messages": [{"role": "user", "content": "Tell a story."}, {"role": "assistant", "content": "Once upon a time."}]})",
                       chat, tok->eos_text(), "x:1"),
      *tok, options);
  EXPECT_EQ(row.ids[0], *tok->bos_id());
  std::vector<int32_t> target_ids;
  for (std::size_t i = 0; i < row.ids.size(); ++i)
    if (row.target[i]) target_ids.push_back(row.ids[i]);
  ASSERT_FALSE(target_ids.empty());
  EXPECT_EQ(target_ids.back(), *tok->eos_id());
  target_ids.pop_back();
  // SentencePiece's leading-space pieces may carry the newline's neighbour; the words match.
  EXPECT_NE(tok->decode(target_ids).find("Once upon a time."), std::string::npos) << tok->decode(target_ids);
  EXPECT_EQ(tok->decode(target_ids).find("story"), std::string::npos);
}

TEST(SftData, FileErrorsNameTheLineAndTruncationIsCounted) {
  TempDir dir;
  auto tok = small_bpe(dir);
  ChatTemplate chat = load_chat_template(dir.path(), tok->eos_text(), tok->bos_text());
  const std::string path = dir.file("d.jsonl");
  std::ofstream(path) << kRow << "\n\n" << R"({"messages": [{"role": "user", "content": "hi"}]})" << "\n";
  try {
    load_sft_dataset(path, *tok, chat, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ":3: no assistant message (nothing to train on)");
  }
  std::ofstream(path) << kRow << "\n" << R"({"messages": [{"role": "bot", "content": "x"}]})" << "\n";
  EXPECT_THROW(load_sft_dataset(path, *tok, chat, {}), Error);
  std::ofstream(path) << kRow << "\n{oops\n";
  try {
    load_sft_dataset(path, *tok, chat, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":2: invalid JSON", 0), 0u) << e.what();
  }
  std::ofstream(path) << kRow << "\n" << kRow << "\n";
  SftDataOptions options;
  const int64_t full = static_cast<int64_t>(load_sft_dataset(path, *tok, chat, options).rows[0].ids.size());
  options.max_seq_len = full - 3;
  SftDataset data = load_sft_dataset(path, *tok, chat, options);
  EXPECT_EQ(data.truncated, 2);
  EXPECT_EQ(static_cast<int64_t>(data.rows[0].ids.size()), full - 3);
}

SftRow fake_row(int n) {
  SftRow r;
  r.ids.assign(n, 5);
  r.target.assign(n, 1);
  r.target[0] = 0;
  return r;
}

TEST(SftData, EpochPlanCoversEveryRowOnceAndIsSeeded) {
  std::vector<SftRow> rows;
  for (int i = 0; i < 37; ++i) rows.push_back(fake_row(3 + (i * 7) % 11));
  auto a = plan_epoch(rows, 4, 1, 0, true), b = plan_epoch(rows, 4, 1, 0, true), c = plan_epoch(rows, 4, 1, 1, true);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::multiset<int64_t> seen;
  for (const auto& batch : a) seen.insert(batch.begin(), batch.end());
  EXPECT_EQ(seen.size(), 37u);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 37u);
  auto ordered = plan_epoch(rows, 4, 1, 0, false);
  EXPECT_EQ(ordered[0], (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(SftData, EpochPlanBatchesRowsThatShareAnOpeningTogether) {
  // Two "schemas": rows open with 70 tokens of 7 or of 8, then a tail of varying length.
  std::vector<SftRow> rows;
  for (int i = 0; i < 16; ++i) {
    SftRow r = fake_row(70 + (i * 5) % 9);
    std::fill(r.ids.begin(), r.ids.begin() + 70, i % 2 ? 7 : 8);
    rows.push_back(r);
  }
  const auto plan = plan_epoch(rows, 4, 3, 0, true);
  ASSERT_EQ(plan.size(), 4u);
  for (const auto& batch : plan) {
    for (int64_t i : batch) EXPECT_EQ(i % 2, batch[0] % 2) << "a batch mixes the two openings";
    for (size_t k = 1; k < batch.size(); ++k)  // and is sorted by length inside
      EXPECT_LE(rows[batch[k - 1]].ids.size(), rows[batch[k]].ids.size());
  }
}

TEST(SftData, EpochPlanKeepsEachGroupsBatchesWhole) {
  // Five "schemas" of 61 rows each, batch 4: no group fills whole batches within a window of
  // 64 rows. Batches that mix openings share no prefix (3x the cost in pretraining), so only
  // the epoch's last remainders may mix: at most one batch per group boundary.
  std::vector<SftRow> rows;
  for (int i = 0; i < 305; ++i) {
    SftRow r = fake_row(70 + (i * 5) % 9);
    std::fill(r.ids.begin(), r.ids.begin() + 70, 100 + i % 5);
    rows.push_back(r);
  }
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const auto plan = plan_epoch(rows, 4, 9, epoch, true);
    std::multiset<int64_t> seen;
    int mixed = 0, short_batches = 0;
    for (const auto& batch : plan) {
      seen.insert(batch.begin(), batch.end());
      bool mixes = false;
      for (int64_t i : batch) mixes |= i % 5 != batch[0] % 5;
      mixed += mixes;
      short_batches += batch.size() < 4;
      for (size_t k = 1; k < batch.size(); ++k) EXPECT_LE(rows[batch[k - 1]].ids.size(), rows[batch[k]].ids.size());
    }
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 305u);
    EXPECT_EQ(seen.size(), 305u);
    EXPECT_LE(mixed, 4) << "epoch " << epoch;
    EXPECT_LE(short_batches, 1) << "only the epoch's last batch may be short";
  }
}

TEST(SftData, CollateShiftsLabelsAndPadsRight) {
  std::vector<SftRow> rows(2);
  rows[0].ids = {10, 11, 12, 13};
  rows[0].target = {0, 0, 1, 1};
  rows[1].ids = {20, 21};
  rows[1].target = {0, 1};
  SftBatch b = collate(rows, {0, 1}, 0);
  EXPECT_TRUE(b.input_ids.equal(torch::tensor({10, 11, 12, 13, 20, 21, 0, 0}, torch::kInt64).view({2, 4})));
  EXPECT_TRUE(b.attention_mask.equal(torch::tensor({1, 1, 1, 1, 1, 1, 0, 0}, torch::kInt64).view({2, 4})));
  EXPECT_TRUE(b.labels.equal(torch::tensor({-100, 12, 13, -100, 21, -100, -100, -100}, torch::kInt64).view({2, 4})));
  EXPECT_EQ(b.target_tokens, 3);
  EXPECT_EQ(b.tokens, 6);
  auto packed = pack_rows(rows, 6);
  ASSERT_EQ(packed.size(), 1u);
  EXPECT_EQ(packed[0].ids, (std::vector<int32_t>{10, 11, 12, 13, 20, 21}));
  EXPECT_EQ(pack_rows(rows, 5).size(), 2u);
}

}  // namespace
}  // namespace lathe
