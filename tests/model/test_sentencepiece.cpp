// SentencePieceTokenizer, load_tokenizer and DecodeStream against the shared reference
// vectors (llama.cpp's 46 texts with HF Llama-2 ids, tok512 ids from Python sentencepiece,
// llama2.c test.c ids with BOS) plus special-token, config and error handling.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/sentencepiece_tokenizer.h"
#include "model/tokenizer.h"
#include "core/utf8.h"
#include "tests/support/test_support.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using ::lathe::testing::TempDir;

struct Vector {
  std::string text;
  std::vector<int32_t> ids;
};

// llama.cpp's format: texts separated by "\n__ggml_vocab_test__\n" (last element empty),
// one line of space-separated ids per text.
std::vector<Vector> read_vectors(const std::string& inp_path, const std::string& out_path) {
  const std::string inp = read_file(inp_path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  std::size_t pos = 0;
  for (auto at = inp.find(sep); at != std::string::npos; at = inp.find(sep, pos)) {
    texts.push_back(inp.substr(pos, at - pos));
    pos = at + sep.size();
  }
  EXPECT_EQ(pos, inp.size()) << "the final element after the last separator should be empty";
  std::vector<Vector> vectors;
  std::istringstream out(read_file(out_path));
  std::string line;
  for (const auto& text : texts) {
    EXPECT_TRUE(std::getline(out, line)) << out_path << " has fewer lines than texts";
    std::istringstream ids(line);
    Vector v{text, {}};
    for (int32_t id; ids >> id;) v.ids.push_back(id);
    vectors.push_back(std::move(v));
  }
  return vectors;
}

std::string stream_decode(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special,
                          int* held_back = nullptr) {
  DecodeStream stream(tok, skip_special);
  std::string out;
  for (int32_t id : ids) {
    const std::string piece = stream.push(id);
    if (held_back && piece.empty() && !tok.is_special(id)) ++*held_back;
    out += piece;
  }
  return out + stream.finish();
}

// A model folder holding a copy of `model` as tokenizer.model plus the given JSON files.
void make_model_dir(const TempDir& dir, const std::string& model,
                    const std::vector<std::pair<std::string, nlohmann::json>>& files = {}) {
  fs::copy_file(model, dir.file("tokenizer.model"));
  for (const auto& [name, j] : files) write_file_atomic(dir.file(name), j.dump(2));
}

TEST(SentencePiece, Llama2VocabVectors) {
  LATHE_REQUIRE_FIXTURE(dir, "tokenizers/llama2-spm");
  SentencePieceTokenizer tok(dir);
  const auto vectors = read_vectors(dir + "/ggml-vocab-llama-spm.gguf.inp", dir + "/ggml-vocab-llama-spm.gguf.out");
  ASSERT_EQ(vectors.size(), 46u);
  for (const auto& v : vectors) {
    const auto ids = tok.encode(v.text);
    EXPECT_EQ(ids, v.ids) << "text: \"" << v.text << "\"";
    // Llama 2 keeps whitespace (remove_extra_whitespaces=false), so decoding is exact.
    EXPECT_EQ(tok.decode(ids), v.text);
    EXPECT_EQ(stream_decode(tok, ids, true), tok.decode(ids)) << "text: \"" << v.text << "\"";
  }
}

TEST(SentencePiece, Tok512Vectors) {
  LATHE_REQUIRE_FIXTURE(dir, "tokenizers/tok512-spm");
  TempDir model;
  make_model_dir(model, dir + "/tok512.model");
  SentencePieceTokenizer tok(model.path());
  const auto vectors = read_vectors(dir + "/tok512.inp", dir + "/tok512.out");
  ASSERT_EQ(vectors.size(), 46u);
  for (const auto& v : vectors) {
    const auto ids = tok.encode(v.text);
    EXPECT_EQ(ids, v.ids) << "text: \"" << v.text << "\"";
    // tok512 collapses whitespace, so check re-encoding is stable rather than exact text.
    EXPECT_EQ(tok.encode(tok.decode(ids)), ids) << "text: \"" << v.text << "\"";
    EXPECT_EQ(stream_decode(tok, ids, true), tok.decode(ids)) << "text: \"" << v.text << "\"";
  }
}

TEST(SentencePiece, Llama2cTestVectorsWithBos) {
  LATHE_REQUIRE_FIXTURE(dir, "tokenizers/llama2-spm");
  SentencePieceTokenizer tok(dir);
  const auto j = nlohmann::json::parse(read_file(dir + "/llama2c_test_c_vectors.json"));
  ASSERT_EQ(j["cases"].size(), 5u);
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tok.encode(text, {.add_bos = true}), c["ids"].get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(tok.decode(tok.encode(text, {.add_bos = true}), true), text);
  }
}

TEST(SentencePiece, Llama2SpecialIdsAndTokenBytes) {
  LATHE_REQUIRE_FIXTURE(dir, "tokenizers/llama2-spm");
  SentencePieceTokenizer tok(dir);  // no config files: ids come from the model itself
  EXPECT_EQ(tok.kind(), "sentencepiece");
  EXPECT_EQ(tok.vocab_size(), 32000);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), std::nullopt);
  EXPECT_EQ(tok.bos_text(), "<s>");
  EXPECT_EQ(tok.eos_text(), "</s>");
  EXPECT_EQ(tok.stop_ids(), std::vector<int32_t>{2});
  EXPECT_TRUE(tok.is_special(1));
  EXPECT_TRUE(tok.is_special(2));
  EXPECT_FALSE(tok.is_special(0));  // <unk> is not a control piece
  EXPECT_FALSE(tok.is_special(15043));
  EXPECT_EQ(tok.id_to_piece(15043), "\xE2\x96\x81Hello");
  EXPECT_EQ(tok.piece_to_id("\xE2\x96\x81Hello"), 15043);
  EXPECT_EQ(tok.piece_to_id("no-such-piece-xyz"), std::nullopt);
  EXPECT_EQ(tok.id_to_piece(13), "<0x0A>");
  EXPECT_EQ(tok.token_bytes(13), "\n");
  EXPECT_EQ(tok.token_bytes(3 + 0xE4), "\xE4");  // byte-fallback pieces start at id 3
  EXPECT_EQ(tok.token_bytes(15043), " Hello");
  EXPECT_EQ(tok.token_bytes(29871), " ");
  EXPECT_EQ(tok.token_bytes(1), "<s>");
  EXPECT_EQ(tok.token_bytes(0), " \xE2\x81\x87 ");
  EXPECT_THROW(tok.token_bytes(32000), Error);
  EXPECT_THROW(tok.decode({-1}), Error);
}

TEST(SentencePiece, ParseSpecialAndLegacyPrefix) {
  LATHE_REQUIRE_FIXTURE(dir, "tokenizers/llama2-spm");
  SentencePieceTokenizer tok(dir);
  EXPECT_EQ(tok.encode("<s>Hello</s>"), (std::vector<int32_t>{1, 15043, 2}));
  // HF's legacy LlamaTokenizer: the segment after <s> gets the dummy prefix ("▁[").
  EXPECT_EQ(tok.encode("<s>[INST]"), (std::vector<int32_t>{1, 518, 25580, 29962}));
  EXPECT_EQ(tok.decode(tok.encode("<s>[INST] hi [/INST]")), "<s>[INST] hi [/INST]");
  EXPECT_EQ(tok.decode({1, 15043, 2}, false), "<s>Hello</s>");
  EXPECT_EQ(tok.decode({1, 15043, 2}, true), "Hello");
  EXPECT_EQ(tok.decode({15043, 2, 15043}, true), "Hello Hello");
  EXPECT_EQ(stream_decode(tok, {1, 15043, 2}, false), "<s>Hello</s>");
  EXPECT_EQ(stream_decode(tok, {15043, 2, 15043}, true), "Hello Hello");
  const auto literal = tok.encode("<s>", {.parse_special = false});
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 1), 0);
  EXPECT_EQ(tok.decode(literal), "<s>");
  EXPECT_EQ(tok.encode("Hi", {.add_bos = true, .add_eos = true}), (std::vector<int32_t>{1, 6324, 2}));
}

TEST(SentencePiece, NonLegacyHasNoPrefixAfterSpecial) {
  LATHE_REQUIRE_FIXTURE(dir, "tokenizers/llama2-spm");
  TempDir model;
  make_model_dir(model, dir + "/tokenizer.model", {{"tokenizer_config.json", {{"legacy", false}}}});
  SentencePieceTokenizer tok(model.path());
  const auto ids = tok.encode("<s>Hello");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tok.id_to_piece(ids[1]), "Hello");  // legacy would give "▁Hello"
  EXPECT_EQ(tok.encode("Hello"), (std::vector<int32_t>{15043}));  // the first segment keeps it
  EXPECT_EQ(tok.decode(ids), "<s>Hello");
}

TEST(SentencePiece, AddedTokensAndConfigIds) {
  LATHE_REQUIRE_FIXTURE(dir, "tokenizers/llama2-spm");
  TempDir model;
  nlohmann::json config = {
      {"add_bos_token", true},
      {"bos_token", {{"content", "<s>"}, {"lstrip", false}}},
      {"eos_token", "<|im_end|>"},
      {"pad_token", "<pad>"},
      {"added_tokens_decoder",
       {{"32000", {{"content", "<|im_start|>"}, {"special", true}}},
        {"32001", {{"content", "<|im_end|>"}, {"special", true}}},
        {"32002", {{"content", "<pad>"}, {"special", true}}}}}};
  make_model_dir(model, dir + "/tokenizer.model",
                 {{"tokenizer_config.json", config},
                  {"generation_config.json", {{"eos_token_id", {32001, 2}}}}});
  SentencePieceTokenizer tok(model.path());
  EXPECT_EQ(tok.vocab_size(), 32003);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 32001);
  EXPECT_EQ(tok.pad_id(), 32002);
  EXPECT_EQ(tok.eos_text(), "<|im_end|>");
  EXPECT_EQ(tok.stop_ids(), (std::vector<int32_t>{32001, 2}));
  EXPECT_TRUE(tok.add_bos_token());
  const std::string text = "<|im_start|>user\nHello<|im_end|>\n";
  const auto ids = tok.encode(text);
  ASSERT_EQ(ids.front(), 32000);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 32001), ids.end());
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(stream_decode(tok, ids, false), text);
  // Skipping specials joins the runs (as HF does), so the legacy prefix space shows.
  EXPECT_EQ(tok.decode(ids, true), "user\nHello \n");
  EXPECT_EQ(tok.token_bytes(32000), "<|im_start|>");
  EXPECT_EQ(tok.piece_to_id("<|im_end|>"), 32001);
}

TEST(SentencePiece, DecodeStreamHoldsBackPartialCharacters) {
  LATHE_REQUIRE_FIXTURE(dir, "tokenizers/llama2-spm");
  SentencePieceTokenizer tok(dir);
  // CJK, emoji and Khmer fall back to byte pieces in Llama 2's vocabulary.
  const std::string text = "Hello 世界 🦙🦙 ok \xE1\x9E\x80\xE1\x9E\x81 \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 done";
  const auto ids = tok.encode(text);
  EXPECT_TRUE(std::any_of(ids.begin(), ids.end(), [](int32_t id) { return id >= 3 && id < 259; }))
      << "expected byte-fallback tokens";
  EXPECT_EQ(tok.decode(ids), text);
  int held_back = 0;
  EXPECT_EQ(stream_decode(tok, ids, true, &held_back), text);
  EXPECT_GT(held_back, 0);
  DecodeStream stream(tok);
  EXPECT_EQ(stream.push(3 + 0xE4), "");  // the first byte of a 3-byte character
  EXPECT_EQ(stream.finish(), "\xEF\xBF\xBD");
}

TEST(SentencePiece, Llama2RoundTripsRandomUnicodeAndStreamsBytesSafely) {
  LATHE_REQUIRE_FIXTURE(dir, "tokenizers/llama2-spm");
  SentencePieceTokenizer tok(dir);
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    // Llama 2 adds a dummy-prefix space and decode removes it again; text that begins with a
    // space or other whitespace loses it, as in sentencepiece itself, so start with a letter.
    const std::string text = "x" + testing::random_unicode_text(rng, 1 + i % 30);
    const auto ids = tok.encode(text);
    ASSERT_EQ(tok.decode(ids), text) << nlohmann::json(text).dump();
    ASSERT_EQ(stream_decode(tok, ids, true), text) << nlohmann::json(text).dump();
  }
  // Random byte-fallback ids (<0x00>..<0xFF> are ids 3..258) form invalid UTF-8 more often
  // than not: streamed text is always valid UTF-8 and equals the one-shot decode.
  std::uniform_int_distribution<int32_t> byte_id(3, 258), len(1, 12);
  for (int i = 0; i < 300; ++i) {
    std::vector<int32_t> ids;
    for (int k = len(rng); k > 0; --k) ids.push_back(byte_id(rng));
    const std::string streamed = stream_decode(tok, ids, true);
    EXPECT_EQ(streamed, tok.decode(ids, true));
    EXPECT_EQ(sanitize_utf8(streamed), streamed) << "streamed text must be valid UTF-8";
  }
}

TEST(SentencePiece, Stories260kThroughLoadTokenizer) {
  LATHE_REQUIRE_FIXTURE(dir, "stories260K-hf");
  const auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->stop_ids(), std::vector<int32_t>{2});
  EXPECT_EQ(tok->encode("Once upon a time"), (std::vector<int32_t>{403, 407, 261, 378}));
  EXPECT_EQ(tok->encode("Once upon a time", {.add_bos = true}), (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok->decode({1, 403, 407, 261, 378}, true), "Once upon a time");
}

TEST(SentencePiece, Stories260kReferencePrompts) {
  LATHE_REQUIRE_FIXTURE(dir, "stories260K-hf");
  LATHE_REQUIRE_FIXTURE(ref, "stories260K/reference.json");
  const auto tok = load_tokenizer(dir);
  const auto j = nlohmann::json::parse(read_file(ref));
  const auto& cases = j.contains("cases") ? j["cases"] : j;
  for (const auto& c : cases) {
    if (!c.contains("prompt") || !c.contains("prompt_token_ids")) continue;
    const std::string prompt = c["prompt"];
    EXPECT_EQ(tok->encode(prompt, {.add_bos = true}), c["prompt_token_ids"].get<std::vector<int32_t>>()) << prompt;
  }
}

TEST(SentencePiece, MissingOrCorruptModelNamesTheFile) {
  TempDir empty;
  try {
    load_tokenizer(empty.path());
    FAIL() << "expected lathe::Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), empty.path() + ": no tokenizer.json or tokenizer.model");
  }
  try {
    SentencePieceTokenizer tok(empty.path());
    FAIL() << "expected lathe::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(empty.file("tokenizer.model")), std::string::npos) << e.what();
  }
  TempDir corrupt;
  write_file_atomic(corrupt.file("tokenizer.model"), "this is not a protobuf");
  try {
    load_tokenizer(corrupt.path());
    FAIL() << "expected lathe::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(corrupt.file("tokenizer.model")), std::string::npos) << e.what();
  }
}

TEST(SentencePiece, BadConfigNamesTheFile) {
  LATHE_REQUIRE_FIXTURE(dir, "tokenizers/tok512-spm");
  TempDir model;
  make_model_dir(model, dir + "/tok512.model");
  write_file_atomic(model.file("tokenizer_config.json"), "{ not json");
  try {
    SentencePieceTokenizer tok(model.path());
    FAIL() << "expected lathe::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lathe
