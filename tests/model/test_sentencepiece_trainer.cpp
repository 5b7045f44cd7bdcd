// SentencePiece training through the shim: the trained tokenizer.model loads through
// SentencePieceTokenizer, round-trips SQL, Chinese, newlines, runs of spaces and characters it
// never saw (byte fallback), keeps the user-defined symbols whole, splits digits, and has the
// special ids the chat template needs; a bad request fails with sentencepiece's reason.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/chat_template.h"
#include "model/sentencepiece_trainer.h"
#include "model/tokenizer.h"
#include "tests/support/test_support.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using ::lathe::testing::TempDir;

std::string training_text() {
  const char* lines[] = {
      "<|system|>",
      "You are a SQL assistant. Answer with one SQLite SELECT query over this schema:",
      "CREATE TABLE products(sku TEXT PRIMARY KEY,",
      "         brand TEXT NOT NULL,            -- 华为 小米 苹果 联想",
      "<|user|>",
      "华为的手机有多少件？",
      "How many Huawei phones are on sale?",
      "<|assistant|>",
      "<reasoning>",
      "查询 products 表，按 brand 筛选，用 COUNT 汇总。",
      "</reasoning>",
      "<answer>",
      "SELECT COUNT(*) FROM products WHERE brand = '华为' AND status = 'on_sale'",
      "</answer>",
  };
  std::string text;
  for (int copy = 0; copy < 40; ++copy)
    for (const char* line : lines) text += std::string(line) + (copy % 2 ? " 2024-06-30" : "") + "\n";
  return text;
}

SentencePieceTrainOptions options() {
  SentencePieceTrainOptions o;
  o.vocab_size = 400;
  o.user_defined_symbols = {"<|system|>", "<|user|>", "<|assistant|>", "<reasoning>", "</reasoning>", "<answer>",
                            "</answer>"};
  return o;
}

class TrainedSentencePiece : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    write_file_atomic(dir_->file("corpus.txt"), training_text());
    train_sentencepiece(dir_->file("corpus.txt"), dir_->path(), options());
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
};
TempDir* TrainedSentencePiece::dir_ = nullptr;

TEST_F(TrainedSentencePiece, LoadsWithTheRequestedVocabularyAndSpecialIds) {
  EXPECT_TRUE(fs::exists(dir_->file("tokenizer.model")));
  EXPECT_FALSE(fs::exists(dir_->file("tokenizer.json")));
  auto tok = load_tokenizer(dir_->path());
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->vocab_size(), 400);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->pad_id(), 3);
  EXPECT_EQ(tok->bos_text(), "<s>");
  EXPECT_EQ(tok->eos_text(), "</s>");
  EXPECT_TRUE(tok->add_bos_token());
  // No .tmp- leftovers from sentencepiece's own files.
  for (const auto& e : fs::directory_iterator(dir_->path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST_F(TrainedSentencePiece, RoundTripsExactlyWithByteFallback) {
  auto tok = load_tokenizer(dir_->path());
  for (const std::string text : {std::string("SELECT COUNT(*) FROM products WHERE brand = '华为'"),
                                 std::string("line one\nline two\n\n  indented   three spaces"),
                                 std::string("全角标点，？！和 emoji 🚗 以及 Ω never seen"),
                                 std::string("<answer>\nSELECT 1\n</answer>\n")}) {
    const auto ids = tok->encode(text);
    EXPECT_EQ(tok->decode(ids), text);
    for (int32_t id : ids) EXPECT_NE(id, 0) << "no <unk> with byte fallback: " << text;
  }
}

TEST_F(TrainedSentencePiece, UserSymbolsAreOnePieceAndDigitsSplit) {
  auto tok = load_tokenizer(dir_->path());
  for (const auto& symbol : options().user_defined_symbols) {
    const auto ids = tok->encode("x" + symbol + "y");
    const auto id = tok->piece_to_id(symbol);
    ASSERT_TRUE(id.has_value()) << symbol;
    EXPECT_NE(std::find(ids.begin(), ids.end(), *id), ids.end()) << symbol;
    EXPECT_FALSE(tok->is_special(*id)) << symbol << " is text, not a control token";
  }
  const auto ids = tok->encode("2024");
  std::string digits;
  for (int32_t id : ids) {
    const std::string bytes = tok->token_bytes(id);
    if (bytes.find_first_of("0123456789") != std::string::npos) {
      EXPECT_EQ(bytes.find_first_not_of(" "), bytes.size() - 1) << "one digit per piece: '" << bytes << "'";
      digits += bytes.back();
    }
  }
  EXPECT_EQ(digits, "2024");
}

TEST_F(TrainedSentencePiece, PlainChatTemplateEndsTurnsWithEos) {
  auto tok = load_tokenizer(dir_->path());
  const ChatTemplate chat = load_chat_template(dir_->path(), tok->eos_text(), tok->bos_text());
  EXPECT_EQ(chat.format, ChatFormat::Plain);
  const std::string rendered = chat.render({{"user", "华为的手机有多少件？"}, {"assistant", "<answer>\nSELECT 1\n</answer>\n"}}, false);
  const auto ids = encode_rendered_chat(*tok, rendered);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 2), ids.end()) << "the assistant turn ends with </s>";
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/false), "<s>" + rendered);
}

TEST(SentencePieceTrainer, ImpossibleVocabularyFailsWithTheReason) {
  TempDir dir;
  write_file_atomic(dir.file("corpus.txt"), "a tiny corpus\n");
  SentencePieceTrainOptions o;
  o.vocab_size = 50000;
  try {
    train_sentencepiece(dir.file("corpus.txt"), dir.path(), o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sentencepiece training on"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("vocab_size"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.file("tokenizer.model")));
}

}  // namespace
}  // namespace lathe
