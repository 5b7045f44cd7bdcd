// The one Tokenizer interface: SentencePiece (tokenizer.model) and Hugging Face byte-level
// BPE (tokenizer.json) implement it; load_tokenizer() picks from what a model folder holds.
// Ids are int32 as in sentencepiece; the interface is torch-free.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lathe {

struct EncodeOptions {
  bool add_bos = false;        // prepend BOS when the tokenizer has one
  bool add_eos = false;
  bool parse_special = true;   // special-token text such as "<|im_end|>" or "</s>" -> its id
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const = 0;
  // Exact text; special tokens are dropped when skip_special is true.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  // The raw bytes a token stands for in decoded text (may be part of a UTF-8 character).
  // For a token that begins a text under SentencePiece, the leading space is included.
  virtual std::string token_bytes(int32_t id) const = 0;
  // The vocabulary's own spelling of a token ("▁the", "Ġthe", "<0x0A>").
  virtual std::string id_to_piece(int32_t id) const = 0;
  virtual std::optional<int32_t> piece_to_id(std::string_view piece) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual bool is_special(int32_t id) const = 0;
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  std::optional<int32_t> pad_id() const { return pad_id_; }
  // Text forms of BOS/EOS for chat templates ("<s>", "<|im_end|>", ...); empty if none.
  const std::string& bos_text() const { return bos_text_; }
  const std::string& eos_text() const { return eos_text_; }
  // Every id that ends generation (eos plus ids such as <|im_end|>, <|eot_id|>).
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  std::string kind() const { return kind_; }  // "sentencepiece" | "bpe"
  // Whether plain text gets BOS by default (tokenizer_config.json add_bos_token), as
  // transformers' tokenizer(text) does; ids are still only added when options ask.
  bool add_bos_token() const { return add_bos_token_ && bos_id_.has_value(); }

 protected:
  std::optional<int32_t> bos_id_, eos_id_, pad_id_;
  std::string bos_text_, eos_text_;
  std::vector<int32_t> stop_ids_;
  std::string kind_;
  bool add_bos_token_ = true;
};

// Loads MODEL_DIR/tokenizer.json (BPE) if present, else MODEL_DIR/tokenizer.model
// (SentencePiece); special tokens and BOS/EOS from tokenizer_config.json, config.json and
// generation_config.json. Throws lathe::Error naming the file and field on bad input.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir);

// Turns a stream of ids into text pieces without splitting UTF-8 characters: bytes of an
// incomplete character are held back until a later token completes it.
class DecodeStream {
 public:
  // continues_text: the ids follow text already shown (a prompt), so a SentencePiece "▁"
  // at the start keeps its space, as in decode(prompt + ids) minus decode(prompt).
  explicit DecodeStream(const Tokenizer& tokenizer, bool skip_special = true, bool continues_text = false)
      : tokenizer_(tokenizer), skip_special_(skip_special), first_(!continues_text) {}
  std::string push(int32_t id);   // the text that became complete with this token
  std::string finish();           // whatever is left (invalid bytes become U+FFFD)

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  bool first_;
  std::string pending_;
};

}  // namespace lathe
