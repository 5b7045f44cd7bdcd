// Byte-level BPE training by repeated pair counting over the distinct pre-tokens (weighted by
// frequency): simple and fast enough for the small corpora of tests and benchmarks.
#include "model/bpe_trainer.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "model/byte_level.h"

namespace lathe {

using json = nlohmann::json;

BpeModelSpec train_bpe(const std::string& corpus, const BpeTrainOptions& options) {
  BpeModelSpec spec;
  spec.pattern = options.pattern;
  for (int b = 0; b < 256; ++b) spec.pieces.push_back(byte_level_char(static_cast<unsigned char>(b)));

  std::vector<std::string_view> pieces;
  pretokenize(corpus, options.pattern, pieces);
  std::unordered_map<std::string_view, int64_t> counts;
  for (std::string_view p : pieces) ++counts[p];
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> weights;
  // Sorted for a deterministic order regardless of hashing.
  std::map<std::string_view, int64_t> sorted(counts.begin(), counts.end());
  for (const auto& [word, count] : sorted) {
    std::vector<int32_t> symbols;
    for (unsigned char b : word) symbols.push_back(b);
    words.push_back(std::move(symbols));
    weights.push_back(count);
  }

  for (int step = 0; step < options.num_merges; ++step) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pair_counts;
    for (size_t w = 0; w < words.size(); ++w)
      for (size_t i = 0; i + 1 < words[w].size(); ++i) pair_counts[{words[w][i], words[w][i + 1]}] += weights[w];
    std::pair<int32_t, int32_t> best{-1, -1};
    int64_t best_count = 1;  // a pair seen once teaches nothing
    for (const auto& [pair, count] : pair_counts) {
      if (count > best_count) {
        best = pair;
        best_count = count;
      }
    }
    if (best.first < 0) break;
    const int32_t merged = static_cast<int32_t>(spec.pieces.size());
    spec.pieces.push_back(spec.pieces[best.first] + spec.pieces[best.second]);
    spec.merges.emplace_back(spec.pieces[best.first], spec.pieces[best.second]);
    for (auto& word : words) {
      std::vector<int32_t> out;
      out.reserve(word.size());
      for (size_t i = 0; i < word.size(); ++i) {
        if (i + 1 < word.size() && word[i] == best.first && word[i + 1] == best.second) {
          out.push_back(merged);
          ++i;
        } else {
          out.push_back(word[i]);
        }
      }
      word = std::move(out);
    }
  }
  for (const std::string& token : options.special_tokens)
    spec.special_tokens.emplace_back(token, static_cast<int32_t>(spec.pieces.size() + spec.special_tokens.size()));
  if (!options.special_tokens.empty()) {
    spec.eos_token = options.special_tokens.back();
    spec.pad_token = options.special_tokens.front();
  }
  return spec;
}

BpeModelSpec gpt2_spec_from_files(const std::string& encoder_json, const std::string& vocab_bpe) {
  BpeModelSpec spec;
  spec.pattern = SplitPattern::gpt2;
  spec.merges_as_pairs = false;
  std::ifstream enc_in(encoder_json);
  if (!enc_in) fail(encoder_json + ": cannot open");
  json encoder;
  try {
    enc_in >> encoder;
  } catch (const json::exception& e) {
    fail(encoder_json + ": not valid JSON (" + e.what() + ")");
  }
  spec.pieces.resize(encoder.size());
  for (auto it = encoder.begin(); it != encoder.end(); ++it) {
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(encoder.size())) fail(encoder_json + ": id of \"" + it.key() + "\" is out of range");
    spec.pieces[id] = it.key();
  }
  std::ifstream bpe_in(vocab_bpe);
  if (!bpe_in) fail(vocab_bpe + ": cannot open");
  std::string line;
  while (std::getline(bpe_in, line)) {
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos) fail(vocab_bpe + ": merge line without a space: " + line);
    spec.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  const std::string eot = "<|endoftext|>";
  auto it = encoder.find(eot);
  if (it == encoder.end()) fail(encoder_json + ": lacks " + eot);
  spec.special_tokens.emplace_back(eot, it->get<int32_t>());
  spec.bos_token = spec.eos_token = eot;
  return spec;
}

void save_bpe_model(const BpeModelSpec& spec, const std::string& dir) {
  json vocab = json::object();
  for (size_t id = 0; id < spec.pieces.size(); ++id) vocab[spec.pieces[id]] = id;
  json merges = json::array();
  for (const auto& [left, right] : spec.merges) {
    if (spec.merges_as_pairs) {
      merges.push_back(json::array({left, right}));
    } else {
      merges.push_back(left + " " + right);
    }
  }
  json added = json::array();
  for (const auto& [content, id] : spec.special_tokens) {
    added.push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  json pre_tokenizer;
  if (spec.pattern == SplitPattern::gpt2) {
    pre_tokenizer = byte_level;
  } else {
    byte_level["use_regex"] = false;
    pre_tokenizer = {{"type", "Sequence"},
                     {"pretokenizers", json::array({{{"type", "Split"},
                                                     {"pattern", {{"Regex", std::string(split_pattern_regex(spec.pattern))}}},
                                                     {"behavior", "Isolated"},
                                                     {"invert", false}},
                                                    byte_level})}};
  }
  json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer},
      {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merges}}},
  };
  auto write = [](const std::string& path, const json& j) {
    std::ofstream out(path, std::ios::binary);
    if (!out) fail(path + ": cannot write");
    out << j.dump(1, ' ', false, json::error_handler_t::strict);
    if (!out) fail(path + ": write failed");
  };
  write(dir + "/tokenizer.json", root);
  json config = {{"tokenizer_class", "PreTrainedTokenizerFast"}, {"add_bos_token", false}};
  auto token_or_null = [](const std::string& t) { return t.empty() ? json(nullptr) : json(t); };
  config["bos_token"] = token_or_null(spec.bos_token);
  config["eos_token"] = token_or_null(spec.eos_token);
  config["pad_token"] = token_or_null(spec.pad_token);
  write(dir + "/tokenizer_config.json", config);
}

}  // namespace lathe
