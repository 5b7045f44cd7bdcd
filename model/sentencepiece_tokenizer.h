// SentencePiece tokenizer (tokenizer.model: Llama-1/2, Mistral, TinyLlama, llama2.c models)
// behind the Tokenizer interface, with Hugging Face's special-token handling on top.
//
// Where it departs from plain sentencepiece, and how it follows HF's slow LlamaTokenizer:
// * parse_special: the text is split on special-token strings (the model's control pieces
//   such as <s> and </s>, plus tokenizer_config.json added_tokens_decoder entries); each text
//   segment is encoded on its own. With "legacy": true (HF's default when the key is
//   absent) every segment gets SentencePiece's dummy-prefix space, so "<s>[INST]" becomes
//   <s> "▁[" "INST" "]" exactly as HF's legacy LlamaTokenizer does. With "legacy": false only
//   the first segment gets it (a segment after a special token is encoded without the
//   prefix, via HF's own trick of encoding "<unk>" + text and dropping as many pieces as
//   "<unk>" alone takes; like HF, this loses a character when it merges with ">").
//   Added tokens marked "special": false are split out even when parse_special is off.
//   lstrip/rstrip flags of added tokens are ignored.
// * decode: special tokens split the ids into runs; each run is decoded like SentencePiece
//   does (the leading "▁" of the run's first piece is dropped), a special token contributes
//   its text, or nothing with skip_special. This round-trips parse_special encoding.
// * token_bytes: "▁" -> ' ', "<0xNN>" -> byte NN, <unk> -> " ⁇ " (sentencepiece's surface),
//   control and added tokens -> their text ("<s>"); skipping them is the caller's choice.
// * libsentencepiece is reached through model/sentencepiece_shim (a shared library loaded with
//   RTLD_LOCAL | RTLD_DEEPBIND), because its bundled protobuf clashes with LibTorch's.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/tokenizer.h"

namespace lathe {

class SentencePieceModel;  // libsentencepiece behind its dlopen'ed shim (see the .cpp)

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Loads MODEL_DIR/tokenizer.model plus, when present, tokenizer_config.json, config.json
  // and generation_config.json. Throws lathe::Error naming the file on bad input.
  explicit SentencePieceTokenizer(const std::string& model_dir);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  std::string token_bytes(int32_t id) const override;
  std::string id_to_piece(int32_t id) const override;
  std::optional<int32_t> piece_to_id(std::string_view piece) const override;
  int32_t vocab_size() const override;
  bool is_special(int32_t id) const override;

  // tokenizer_config.json add_bos_token / add_eos_token (Llama defaults: true / false):
  // what HF's encode(add_special_tokens=True) would add.
  bool add_eos_token() const { return add_eos_token_; }
  // Whether decoding drops the dummy-prefix space of a run's first "▁" piece (true for
  // models with add_dummy_prefix or remove_extra_whitespaces, i.e. every Llama model).
  bool strips_leading_space() const;

 private:
  struct AddedToken {
    std::string content;
    bool special = true;
  };
  void load_added_tokens(const std::string& config_path);
  void load_special_ids(const std::string& model_dir);
  std::optional<int32_t> id_for_text(const std::string& text) const;
  // SentencePiece ids of a text segment; `dummy_prefix` false suppresses the prefix space.
  std::vector<int32_t> encode_segment(std::string_view text, bool dummy_prefix) const;
  void check_id(int32_t id) const;

  std::string model_path_;
  std::unique_ptr<SentencePieceModel> sp_;
  int32_t sp_size_ = 0;
  std::map<int32_t, AddedToken> added_;                // id -> token, from added_tokens_decoder
  std::unordered_map<std::string, int32_t> added_by_text_;
  // Strings that split the text under parse_special (control pieces + added tokens), longest
  // first so that a string that is a prefix of another never wins.
  std::vector<std::pair<std::string, int32_t>> split_tokens_;
  bool legacy_ = true;
  bool strip_leading_space_ = true;  // decode drops the dummy prefix (sentencepiece's rule)
  bool add_eos_token_ = false;
};

}  // namespace lathe
