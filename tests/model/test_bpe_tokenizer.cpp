// Byte-level BPE (model/bpe_tokenizer.h): GPT-2's 46 llama.cpp vectors through a
// tokenizer.json built from encoder.json + vocab.bpe, the split patterns against
// pretokenize/splits.json, round trips on random Unicode, the priority-queue merge against
// its quadratic reference, a self-trained tokenizer (no ../shared needed) and bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/error.h"
#include "model/bpe_tokenizer.h"
#include "model/bpe_trainer.h"
#include "model/pretokenizer.h"
#include "tests/support/test_support.h"

namespace lathe {
namespace {

using json = nlohmann::json;
using lathe::testing::TempDir;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::vector<std::string> split_vocab_test_texts(const std::string& inp) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t pos = 0;
  while (true) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  if (!texts.empty() && texts.back().empty()) texts.pop_back();
  return texts;
}

std::vector<std::vector<int32_t>> read_id_lines(const std::string& out) {
  std::vector<std::vector<int32_t>> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (ls >> id) ids.push_back(id);
    lines.push_back(ids);
  }
  return lines;
}

const std::string k_corpus_seed =
    "<|im_start|>user\nHow many SUVs are in stock?<|im_end|>\n"
    "<|im_start|>assistant\nSELECT COUNT(*) FROM vehicles WHERE body = 'SUV' AND status = 'in_stock';<|im_end|>\n"
    "The quick brown fox jumps over the lazy dog. It's 2024, and they're shipping 1234 cars.\n"
    "宝马还有几辆在库？ 日本語のテキスト. Здравствуй, мир! emoji 🚗🚙 👍🏽\n";

// A small deterministic corpus for the self-trained tokenizer.
std::string training_corpus() {
  std::string corpus;
  for (int i = 0; i < 40; ++i) corpus += k_corpus_seed + "row " + std::to_string(i * 37) + "\n";
  return corpus;
}

class TrainedTokenizer : public ::testing::Test {
 protected:
  void SetUp() override {
    save_bpe_model(train_bpe(training_corpus(), BpeTrainOptions{}), dir_.path());
    tokenizer_ = load_bpe_tokenizer(dir_.path());
  }
  TempDir dir_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

// --- GPT-2 through the whole pipeline ---

TEST(BpeTokenizer, Gpt2MatchesAll46LlamaCppVectors) {
  LATHE_REQUIRE_FIXTURE(gpt2, "tokenizers/gpt2");
  TempDir dir;
  save_bpe_model(gpt2_spec_from_files(gpt2 + "/encoder.json", gpt2 + "/vocab.bpe"), dir.path());
  auto tokenizer = load_bpe_tokenizer(dir.path());
  EXPECT_EQ(tokenizer->kind(), "bpe");
  EXPECT_EQ(tokenizer->vocab_size(), 50257);
  const auto texts = split_vocab_test_texts(read_file(gpt2 + "/ggml-vocab-gpt-2.gguf.inp"));
  const auto expected = read_id_lines(read_file(gpt2 + "/ggml-vocab-gpt-2.gguf.out"));
  ASSERT_EQ(texts.size(), 46u);
  ASSERT_EQ(expected.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = tokenizer->encode(texts[i]);
    EXPECT_EQ(ids, expected[i]) << "text " << i << ": " << json(texts[i]).dump();
    EXPECT_EQ(tokenizer->decode(ids), texts[i]) << "text " << i;
  }
  // <|endoftext|> is special, bos = eos from tokenizer_config.json.
  EXPECT_EQ(tokenizer->eos_id(), 50256);
  EXPECT_EQ(tokenizer->bos_id(), 50256);
  EXPECT_EQ(tokenizer->eos_text(), "<|endoftext|>");
  EXPECT_EQ(tokenizer->stop_ids(), std::vector<int32_t>{50256});
  EXPECT_EQ(tokenizer->encode("a<|endoftext|>b"), (std::vector<int32_t>{64, 50256, 65}));
  EXPECT_NE(tokenizer->encode("a<|endoftext|>b", {false, false, false}).size(), 3u);
  EXPECT_EQ(tokenizer->id_to_piece(18435), "ĠHello");
  EXPECT_EQ(tokenizer->token_bytes(18435), " Hello");
  EXPECT_EQ(tokenizer->piece_to_id("ĠHello"), 18435);
}

TEST(BpeTokenizer, Gpt2PairFormMergesGiveTheSameIds) {
  LATHE_REQUIRE_FIXTURE(gpt2, "tokenizers/gpt2");
  TempDir strings_dir, pairs_dir;
  BpeModelSpec spec = gpt2_spec_from_files(gpt2 + "/encoder.json", gpt2 + "/vocab.bpe");
  save_bpe_model(spec, strings_dir.path());
  spec.merges_as_pairs = true;
  save_bpe_model(spec, pairs_dir.path());
  auto a = load_bpe_tokenizer(strings_dir.path());
  auto b = load_bpe_tokenizer(pairs_dir.path());
  const std::string text = "Hello world, it's 2024! 宝马 🚗 naïve   spaces\n\nend";
  EXPECT_EQ(a->encode(text), b->encode(text));
}

TEST(BpeTokenizer, Gpt2MergeLoopAgreesWithQuadraticReference) {
  LATHE_REQUIRE_FIXTURE(gpt2, "tokenizers/gpt2");
  TempDir dir;
  save_bpe_model(gpt2_spec_from_files(gpt2 + "/encoder.json", gpt2 + "/vocab.bpe"), dir.path());
  BpeTokenizer tokenizer(dir.path());
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    const std::string text = testing::random_unicode_text(rng, 1 + i % 12);
    EXPECT_EQ(tokenizer.merge_piece(text), tokenizer.merge_piece_reference(text)) << json(text).dump();
  }
  for (const std::string text : {"aaaaaaaaaaaaaaaa", "          ", "0000000000000", "internationalization"})
    EXPECT_EQ(tokenizer.merge_piece(text), tokenizer.merge_piece_reference(text)) << text;
}

TEST(BpeTokenizer, Gpt2RoundTripsRandomUnicode) {
  LATHE_REQUIRE_FIXTURE(gpt2, "tokenizers/gpt2");
  TempDir dir;
  save_bpe_model(gpt2_spec_from_files(gpt2 + "/encoder.json", gpt2 + "/vocab.bpe"), dir.path());
  auto tokenizer = load_bpe_tokenizer(dir.path());
  std::mt19937 rng(11);
  for (int i = 0; i < 200; ++i) {
    const std::string text = testing::random_unicode_text(rng, 1 + i % 40);
    const auto ids = tokenizer->encode(text);
    ASSERT_EQ(tokenizer->decode(ids), text) << json(text).dump();
    std::string joined;
    for (int32_t id : ids) joined += tokenizer->token_bytes(id);
    ASSERT_EQ(joined, text);
  }
}

// --- split patterns ---

TEST(Pretokenizer, MatchesSplitsJsonForAllThreePatterns) {
  LATHE_REQUIRE_FIXTURE(splits_path, "tokenizers/pretokenize/splits.json");
  const json splits = json::parse(read_file(splits_path));
  ASSERT_EQ(splits["cases"].size(), 30u);
  for (const std::string name : {"gpt2", "llama3", "qwen2"}) {
    const auto pattern = split_pattern_from_regex(splits["patterns"][name].get<std::string>());
    ASSERT_TRUE(pattern.has_value()) << name << " pattern not recognised";
    for (const json& c : splits["cases"]) {
      const std::string text = c["text"];
      std::vector<std::string_view> pieces;
      pretokenize(text, *pattern, pieces);
      EXPECT_EQ(std::vector<std::string>(pieces.begin(), pieces.end()), c[name].get<std::vector<std::string>>())
          << name << ": " << json(text).dump();
    }
  }
}

TEST(Pretokenizer, HandWrittenCases) {
  auto split = [](std::string_view text, SplitPattern p) {
    std::vector<std::string_view> pieces;
    pretokenize(text, p, pieces);
    return std::vector<std::string>(pieces.begin(), pieces.end());
  };
  using V = std::vector<std::string>;
  // Case-insensitive contractions only in Llama-3/Qwen2.
  EXPECT_EQ(split("IT'S", SplitPattern::gpt2), (V{"IT", "'", "S"}));
  EXPECT_EQ(split("IT'S", SplitPattern::llama3), (V{"IT", "'S"}));
  // \s+(?!\S) leaves the last space for the next word; at the end it takes the whole run.
  EXPECT_EQ(split("a   b  ", SplitPattern::gpt2), (V{"a", "  ", " b", "  "}));
  // \s*[\r\n]+ ends at the last newline of a whitespace run.
  EXPECT_EQ(split("a \n \n  b", SplitPattern::qwen2), (V{"a", " \n \n", " ", " b"}));
  EXPECT_EQ(split("12345", SplitPattern::llama3), (V{"123", "45"}));
  EXPECT_EQ(split("", SplitPattern::gpt2), V{});
  // Invalid UTF-8 bytes are "other" characters and survive byte for byte.
  EXPECT_EQ(split("a\xFF\xFE b", SplitPattern::gpt2), (V{"a", "\xFF\xFE", " b"}));
  EXPECT_FALSE(split_pattern_from_regex("\\w+").has_value());
}

TEST(Pretokenizer, PiecesConcatenateToTheText) {
  std::mt19937 rng(3);
  for (SplitPattern p : {SplitPattern::gpt2, SplitPattern::llama3, SplitPattern::qwen2}) {
    for (int i = 0; i < 200; ++i) {
      std::string text = testing::random_unicode_text(rng, 1 + i % 30);
      if (i % 5 == 0) text += "\xC3";  // a truncated character at the end
      std::vector<std::string_view> pieces;
      pretokenize(text, p, pieces);
      std::string joined;
      for (auto piece : pieces) {
        EXPECT_FALSE(piece.empty());
        joined += piece;
      }
      ASSERT_EQ(joined, text);
    }
  }
}

// --- the project's own tokenizer (no ../shared) ---

TEST_F(TrainedTokenizer, LoadsAndRoundTrips) {
  EXPECT_EQ(tokenizer_->kind(), "bpe");
  // The corpus runs out of repeated pairs before 300 merges; the specials come last.
  EXPECT_GT(tokenizer_->vocab_size(), 256 + 100 + 3);
  EXPECT_LE(tokenizer_->vocab_size(), 256 + 300 + 3);
  const std::string text = "SELECT COUNT(*) FROM vehicles; the quick brown fox 宝马 🚗";
  const auto ids = tokenizer_->encode(text);
  EXPECT_LT(ids.size(), text.size() / 2) << "merges should compress the training text";
  EXPECT_EQ(tokenizer_->decode(ids), text);
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    const std::string random = testing::random_unicode_text(rng, 1 + i % 40);
    ASSERT_EQ(tokenizer_->decode(tokenizer_->encode(random)), random) << json(random).dump();
  }
  // Bytes that are not UTF-8 still round-trip (every byte has a token).
  const std::string invalid = "ok \xFF\xC3 \x80 done";
  EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(invalid)), invalid);
}

TEST_F(TrainedTokenizer, SpecialTokensAreSingleIdsAndNeverMerged) {
  const int32_t im_start = *tokenizer_->piece_to_id("<|im_start|>");
  const int32_t im_end = *tokenizer_->piece_to_id("<|im_end|>");
  const int32_t eot = *tokenizer_->piece_to_id("<|endoftext|>");
  EXPECT_EQ(eot, tokenizer_->vocab_size() - 3);
  EXPECT_EQ(im_start, eot + 1);
  EXPECT_TRUE(tokenizer_->is_special(im_end));
  EXPECT_FALSE(tokenizer_->is_special(65));
  const auto ids = tokenizer_->encode("<|im_start|>user\nhi<|im_end|><|endoftext|>");
  EXPECT_EQ(ids.front(), im_start);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), im_end), 1);
  EXPECT_EQ(ids.back(), eot);
  EXPECT_EQ(tokenizer_->decode(ids, /*skip_special=*/true), "user\nhi");
  EXPECT_EQ(tokenizer_->decode(ids), "<|im_start|>user\nhi<|im_end|><|endoftext|>");
  // Without parse_special the text is ordinary bytes.
  const auto plain = tokenizer_->encode("<|im_end|>", {false, false, false});
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), im_end), 0);
  EXPECT_EQ(tokenizer_->decode(plain), "<|im_end|>");
  // eos = last special, pad = first; add_eos appends it; add_bos_token false means no BOS.
  EXPECT_EQ(tokenizer_->eos_id(), im_end);
  EXPECT_EQ(tokenizer_->pad_id(), eot);
  EXPECT_EQ(tokenizer_->stop_ids(), std::vector<int32_t>{im_end});
  EXPECT_EQ(tokenizer_->encode("hi", {true, true, true}).back(), im_end);
}

TEST_F(TrainedTokenizer, ConfigFilesAddEosIdsAndBos) {
  nlohmann::json tc = json::parse(read_file(dir_.file("tokenizer_config.json")));
  tc["bos_token"] = {{"content", "<|endoftext|>"}, {"lstrip", false}};
  tc["add_bos_token"] = true;
  write_file(dir_.file("tokenizer_config.json"), tc.dump());
  const int32_t eot = tokenizer_->vocab_size() - 3, im_end = eot + 2;
  const std::string e = std::to_string(eot), i = std::to_string(im_end);
  write_file(dir_.file("config.json"), "{\"eos_token_id\": " + e + ", \"bos_token_id\": 7}");
  write_file(dir_.file("generation_config.json"), "{\"eos_token_id\": [" + i + ", " + e + "]}");
  auto tokenizer = load_bpe_tokenizer(dir_.path());
  EXPECT_EQ(tokenizer->bos_id(), eot);  // tokenizer_config.json wins over config.json
  EXPECT_EQ(tokenizer->bos_text(), "<|endoftext|>");
  EXPECT_EQ(tokenizer->eos_id(), im_end);
  EXPECT_EQ(tokenizer->stop_ids(), (std::vector<int32_t>{im_end, eot}));
  EXPECT_EQ(tokenizer->encode("hi", {true, false, true}).front(), eot);
}

TEST_F(TrainedTokenizer, AddedTokenFlags) {
  const int32_t n = tokenizer_->vocab_size();
  json tj = json::parse(read_file(dir_.file("tokenizer.json")));
  tj["added_tokens"].push_back({{"id", n}, {"content", "<tool>"}, {"special", false}, {"lstrip", true},
                                {"rstrip", true}, {"single_word", false}, {"normalized", false}});
  tj["added_tokens"].push_back({{"id", n + 1}, {"content", "sql"}, {"special", false}, {"lstrip", false},
                                {"rstrip", false}, {"single_word", true}, {"normalized", false}});
  write_file(dir_.file("tokenizer.json"), tj.dump());
  auto tokenizer = load_bpe_tokenizer(dir_.path());
  EXPECT_EQ(tokenizer->vocab_size(), n + 2);
  // lstrip/rstrip swallow the surrounding spaces; non-special tokens split even without
  // parse_special.
  const auto ids = tokenizer->encode("a  <tool>  b", {false, false, false});
  EXPECT_EQ(tokenizer->decode(ids), "a<tool>b");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), n), 1);
  // single_word: only as a whole word.
  auto count_sql = [&](const std::string& text) {
    const auto v = tokenizer->encode(text);
    return std::count(v.begin(), v.end(), n + 1);
  };
  EXPECT_EQ(count_sql("run sql now"), 1);
  EXPECT_EQ(count_sql("mysql"), 0);
  EXPECT_EQ(count_sql("sqlite"), 0);
}

TEST_F(TrainedTokenizer, LlamaThreeAndGptTwoPatternsLoad) {
  for (SplitPattern p : {SplitPattern::gpt2, SplitPattern::llama3}) {
    BpeTrainOptions options;
    options.pattern = p;
    options.num_merges = 50;
    TempDir dir;
    save_bpe_model(train_bpe(training_corpus(), options), dir.path());
    auto tokenizer = load_bpe_tokenizer(dir.path());
    const std::string text = "It'S 12345 rows\n\n  宝马";
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(text)), text);
  }
}

TEST_F(TrainedTokenizer, IgnoreMergesTakesVocabularyWordsWhole) {
  // Llama-3 sets model.ignore_merges: a pre-token that is a vocabulary entry is one id even
  // when the merges would not build it. "Ġzq" is added with no merge producing it.
  json tj = json::parse(read_file(dir_.file("tokenizer.json")));
  const int32_t n = tokenizer_->vocab_size();
  tj["model"]["vocab"]["Ġzq"] = n;
  write_file(dir_.file("tokenizer.json"), tj.dump());
  EXPECT_GT(load_bpe_tokenizer(dir_.path())->encode("a zq").size(), 2u);
  tj["model"]["ignore_merges"] = true;
  write_file(dir_.file("tokenizer.json"), tj.dump());
  auto tokenizer = load_bpe_tokenizer(dir_.path());
  const auto ids = tokenizer->encode("a zq");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[1], n);
  EXPECT_EQ(tokenizer->decode(ids), "a zq");
}

// --- bad input ---

class BadTokenizerJson : public TrainedTokenizer {
 protected:
  // Applies `edit` to a valid tokenizer.json and returns the load error message.
  std::string load_error(const std::function<void(json&)>& edit) {
    if (original_.empty()) original_ = read_file(dir_.file("tokenizer.json"));
    json tj = json::parse(original_);
    edit(tj);
    write_file(dir_.file("tokenizer.json"), tj.dump());
    try {
      load_bpe_tokenizer(dir_.path());
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }
  std::string original_;
};

TEST_F(BadTokenizerJson, NotJson) {
  write_file(dir_.file("tokenizer.json"), "{\"model\": ");
  try {
    load_bpe_tokenizer(dir_.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir_.file("tokenizer.json") + ": not valid JSON"), std::string::npos) << e.what();
  }
}

TEST_F(BadTokenizerJson, MissingFileNamesIt) {
  TempDir empty;
  EXPECT_THROW(load_bpe_tokenizer(empty.path()), Error);
}

TEST_F(BadTokenizerJson, ErrorsNameFileAndField) {
  const std::string path = dir_.file("tokenizer.json");
  auto expect = [&](const std::string& message, const std::string& field) {
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find("\"" + field + "\""), std::string::npos) << message;
  };
  expect(load_error([](json& j) { j["model"]["type"] = "WordPiece"; }), "model.type");
  expect(load_error([](json& j) { j["model"].erase("type"); }), "model.type");
  expect(load_error([](json& j) { j["model"].erase("vocab"); }), "model.vocab");
  expect(load_error([](json& j) { j["model"].erase("merges"); }), "model.merges");
  expect(load_error([](json& j) { j.erase("model"); }), "model");
  expect(load_error([](json& j) { j["model"]["merges"][0] = "nospace"; }), "model.merges[0]");
  expect(load_error([](json& j) { j["model"]["merges"][1] = json::array({"zzz", "q"}); }), "model.merges[1]");
  expect(load_error([](json& j) { j["added_tokens"][0].erase("content"); }), "added_tokens[0].content");
  expect(load_error([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+"; }),
         "pre_tokenizer.pretokenizers[0].pattern.Regex");
  expect(load_error([](json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; }), "pre_tokenizer.type");
  expect(load_error([](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }), "normalizer.type");
  expect(load_error([](json& j) { j["decoder"] = {{"type", "Metaspace"}}; }), "decoder.type");
  expect(load_error([](json& j) { j["model"]["vocab"].erase("Ġ"); }), "model.vocab");
}

TEST_F(BadTokenizerJson, BadConfigFilesNameTheirField) {
  write_file(dir_.file("tokenizer_config.json"), R"({"eos_token": "<|nope|>"})");
  try {
    load_bpe_tokenizer(dir_.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: field \"eos_token\""), std::string::npos) << e.what();
  }
  write_file(dir_.file("tokenizer_config.json"), "{}");
  write_file(dir_.file("config.json"), R"({"eos_token_id": 99999})");
  try {
    load_bpe_tokenizer(dir_.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json: field \"eos_token_id\""), std::string::npos) << e.what();
  }
  write_file(dir_.file("config.json"), "not json");
  EXPECT_THROW(load_bpe_tokenizer(dir_.path()), Error);
}

}  // namespace
}  // namespace lathe
