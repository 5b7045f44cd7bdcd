// load_tokenizer (picks BPE or SentencePiece from what a model folder holds) and
// DecodeStream (incremental detokenization that never splits a UTF-8 character).
#include "model/tokenizer.h"

#include <filesystem>

#include "core/error.h"
#include "model/bpe_tokenizer.h"
#include "model/sentencepiece_tokenizer.h"
#include "core/utf8.h"

namespace lathe {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir) {
  namespace fs = std::filesystem;
  if (fs::exists(model_dir + "/tokenizer.json")) return load_bpe_tokenizer(model_dir);
  if (fs::exists(model_dir + "/tokenizer.model")) return std::make_unique<SentencePieceTokenizer>(model_dir);
  fail(model_dir + ": no tokenizer.json or tokenizer.model");
}

// Mirrors SentencePieceTokenizer::decode: a special token (when shown) starts a new run, and
// the first "▁" piece of a run loses its space, as sentencepiece's decoder drops the dummy
// prefix. BPE tokens are passed through as their bytes.
std::string DecodeStream::push(int32_t id) {
  // A model's embedding may be larger than its tokenizer (padded vocabularies); ids beyond
  // the tokenizer decode to nothing, as in transformers, instead of failing a stream.
  if (id < 0 || id >= tokenizer_.vocab_size()) return "";
  if (tokenizer_.is_special(id)) {
    if (skip_special_) return "";
    std::string out = sanitize_utf8(pending_) + tokenizer_.token_bytes(id);
    pending_.clear();
    first_ = true;
    return out;
  }
  std::string bytes = tokenizer_.token_bytes(id);
  if (first_) {
    const auto* sp = dynamic_cast<const SentencePieceTokenizer*>(&tokenizer_);
    if (sp && sp->strips_leading_space() && !bytes.empty() && bytes[0] == ' ' &&
        tokenizer_.id_to_piece(id).rfind("\xE2\x96\x81", 0) == 0)
      bytes.erase(0, 1);
    first_ = false;
  }
  pending_ += bytes;
  const std::size_t n = utf8_complete_prefix(pending_);
  std::string out = sanitize_utf8(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  return out;
}

std::string DecodeStream::finish() {
  std::string out = sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace lathe
