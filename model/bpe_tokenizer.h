// Hugging Face tokenizer.json: byte-level BPE (GPT-2, Llama-3, Qwen2 families).
//
// Supported tokenizer.json: model.type "BPE" (merges as "a b" strings or ["a","b"] pairs,
// ignore_merges honoured); pre_tokenizer ByteLevel (use_regex: GPT-2 split) or a Sequence of
// Split(Regex, Isolated, invert false) + ByteLevel(use_regex false) with the GPT-2, Llama-3 or
// Qwen2 regex; decoder ByteLevel; post_processor ByteLevel / TemplateProcessing / Sequence
// of them. Anything else is a lathe::Error naming the file and field.
//
// Departures from Hugging Face tokenizers:
// - normalizer NFC (Qwen2) is accepted but not applied: input is taken as already NFC
//   (logged at load). Other normalizers are rejected.
// - Post-processor templates are not interpreted: BOS/EOS come from EncodeOptions, and BOS
//   is only added when tokenizer_config.json does not say add_bos_token: false.
// - Non-special added tokens are always split out (as HF does); special ones only when
//   EncodeOptions::parse_special is set. lstrip/rstrip absorb ASCII whitespace only, and the
//   "normalized" flag is irrelevant because no normalizer is applied.
// - BPE dropout is rejected rather than ignored (training-time randomness).
#pragma once
#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/pretokenizer.h"
#include "model/tokenizer.h"

namespace lathe {

// Loads MODEL_DIR/tokenizer.json (+ tokenizer_config.json, config.json,
// generation_config.json when present). Throws lathe::Error naming the file and field on bad
// input.
std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::string& model_dir);

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(const std::string& model_dir);

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  std::string token_bytes(int32_t id) const override;
  std::string id_to_piece(int32_t id) const override;
  std::optional<int32_t> piece_to_id(std::string_view piece) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_piece_.size()); }
  bool is_special(int32_t id) const override;

  // BPE of one pre-token (raw bytes): the priority-queue merge loop, uncached.
  std::vector<int32_t> merge_piece(std::string_view piece) const;
  // The plain reference for merge_piece: rescan for the lowest-rank pair after every merge
  // (quadratic; kept for tests, rule 10).
  std::vector<int32_t> merge_piece_reference(std::string_view piece) const;

 private:
  struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool special = false, lstrip = false, rstrip = false, single_word = false;
  };
  struct Merge {
    int32_t rank, id;
  };

  void load_tokenizer_json(const std::string& path);
  void load_special_ids(const std::string& model_dir);
  void encode_segment(std::string_view segment, std::vector<int32_t>& ids) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>& ids) const;
  const Merge* find_merge(int32_t left, int32_t right) const;
  bool single_word_ok(std::string_view text, size_t begin, size_t end) const;

  std::vector<std::string> id_to_piece_;  // vocabulary spelling ("Ġthe") or added content
  std::vector<std::string> id_to_bytes_;  // what the id decodes to
  std::vector<uint8_t> special_;          // per id
  std::unordered_map<std::string, int32_t> piece_ids_;  // spelling -> id
  std::unordered_map<std::string, int32_t> bytes_ids_;  // raw bytes -> id (ignore_merges)
  std::array<int32_t, 256> byte_ids_{};
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  std::vector<AddedToken> added_;
  std::array<std::vector<int32_t>, 256> added_by_first_byte_;  // indices into added_, longest first
  SplitPattern pattern_ = SplitPattern::gpt2;
  bool add_prefix_space_ = false;
  bool ignore_merges_ = false;

  // Pre-token -> ids. Text repeats its words, so most pre-tokens skip the merge loop.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace lathe
