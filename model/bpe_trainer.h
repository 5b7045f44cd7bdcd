// A small byte-level BPE trainer and a tokenizer.json writer, so the project's own tests and
// benchmarks have a BPE model without downloads, and GPT-2's encoder.json + vocab.bpe can be
// turned into the equivalent tokenizer.json.
// Departure from HF's BpeTrainer: no min_frequency, alphabet limits or progress; ties
// between equally frequent pairs go to the pair with the smaller (left id, right id).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/pretokenizer.h"

namespace lathe {

struct BpeModelSpec {
  std::vector<std::string> pieces;                            // byte-level spelling; index = id
  std::vector<std::pair<std::string, std::string>> merges;    // rank order
  std::vector<std::pair<std::string, int32_t>> special_tokens;  // content, id (may be a vocab id)
  SplitPattern pattern = SplitPattern::qwen2;
  bool merges_as_pairs = true;  // ["a","b"] (tokenizers >= 0.20) rather than "a b"
  std::string bos_token, eos_token, pad_token;  // tokenizer_config.json; empty = none
};

struct BpeTrainOptions {
  int num_merges = 300;
  SplitPattern pattern = SplitPattern::qwen2;
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
};

// Learns up to options.num_merges merges from `corpus` (fewer when no pair occurs twice).
// Ids: the 256 bytes in byte order, then merges in rank order, then the special tokens.
// eos_token is the last special token, pad_token the first.
BpeModelSpec train_bpe(const std::string& corpus, const BpeTrainOptions& options);

// GPT-2's encoder.json + vocab.bpe as HF's gpt2 tokenizer.json has them (ByteLevel split,
// "<|endoftext|>" special and bos = eos).
BpeModelSpec gpt2_spec_from_files(const std::string& encoder_json, const std::string& vocab_bpe);

// Writes DIR/tokenizer.json and DIR/tokenizer_config.json (DIR must exist).
void save_bpe_model(const BpeModelSpec& spec, const std::string& dir);

}  // namespace lathe
