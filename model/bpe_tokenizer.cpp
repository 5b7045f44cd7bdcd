// Byte-level BPE from a Hugging Face tokenizer.json (see bpe_tokenizer.h for the supported
// subset and the departures from HF). Encoding: split out added tokens -> split regex
// (pretokenizer.h) -> per pre-token, cached BPE over raw bytes with a priority queue.
#include "model/bpe_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "model/byte_level.h"
#include "model/unicode_class.h"

namespace lathe {
namespace {

using json = nlohmann::json;

constexpr size_t k_cache_limit = 1 << 18;  // entries; cleared wholesale when full

uint64_t pair_key(int32_t left, int32_t right) {
  return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
}

// The file parsed as JSON; nullopt when it does not exist.
std::optional<json> read_json(const std::string& path, bool required) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (required) fail(path + ": cannot open (a byte-level BPE model folder needs tokenizer.json)");
    return std::nullopt;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return json::parse(buffer.str());
  } catch (const json::exception& e) {
    fail(path + ": not valid JSON (" + e.what() + ")");
  }
}

// obj[key], which must exist; `field` is its dotted path for the message.
const json& require(const json& obj, const std::string& key, const std::string& path, const std::string& field) {
  if (!obj.is_object() || !obj.contains(key)) fail(path + ": missing field \"" + field + "\"");
  return obj.at(key);
}

std::string require_string(const json& obj, const std::string& key, const std::string& path, const std::string& field) {
  const json& v = require(obj, key, path, field);
  if (!v.is_string()) fail(path + ": field \"" + field + "\" must be a string");
  return v.get<std::string>();
}

bool optional_bool(const json& obj, const std::string& key, bool fallback, const std::string& path, const std::string& field) {
  if (!obj.is_object() || !obj.contains(key) || obj.at(key).is_null()) return fallback;
  if (!obj.at(key).is_boolean()) fail(path + ": field \"" + field + "\" must be true or false");
  return obj.at(key).get<bool>();
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// The ids a config field holds: an int, a list of ints, or null/absent.
std::vector<int32_t> id_list(const json& config, const std::string& key, const std::string& path) {
  std::vector<int32_t> ids;
  if (!config.contains(key) || config.at(key).is_null()) return ids;
  const json& v = config.at(key);
  auto one = [&](const json& x) {
    if (!x.is_number_integer()) fail(path + ": field \"" + key + "\" must be an integer id or a list of them");
    ids.push_back(x.get<int32_t>());
  };
  if (v.is_array()) {
    for (const json& x : v) one(x);
  } else {
    one(v);
  }
  return ids;
}

}  // namespace

std::unique_ptr<Tokenizer> load_bpe_tokenizer(const std::string& model_dir) {
  return std::make_unique<BpeTokenizer>(model_dir);
}

BpeTokenizer::BpeTokenizer(const std::string& model_dir) {
  kind_ = "bpe";
  load_tokenizer_json(model_dir + "/tokenizer.json");
  load_special_ids(model_dir);
}

void BpeTokenizer::load_tokenizer_json(const std::string& path) {
  const json root = *read_json(path, true);
  if (!root.is_object()) fail(path + ": top level must be a JSON object");

  // --- model ---
  const json& model = require(root, "model", path, "model");
  const std::string type = require_string(model, "type", path, "model.type");
  if (type != "BPE") fail(path + ": field \"model.type\" is \"" + type + "\"; only \"BPE\" (byte-level) is supported");
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
    fail(path + ": field \"model.dropout\" must be null: BPE dropout is for training only");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
      fail(path + ": field \"model." + key + "\" is not supported by byte-level BPE");
  }
  if (optional_bool(model, "byte_fallback", false, path, "model.byte_fallback"))
    fail(path + ": field \"model.byte_fallback\" is true: that is SentencePiece-style BPE, not byte-level");
  ignore_merges_ = optional_bool(model, "ignore_merges", false, path, "model.ignore_merges");

  const json& vocab = require(model, "vocab", path, "model.vocab");
  if (!vocab.is_object()) fail(path + ": field \"model.vocab\" must be an object {token: id}");
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      fail(path + ": field \"model.vocab\" entry \"" + it.key() + "\" must have a non-negative integer id");
    max_id = std::max(max_id, it.value().get<int32_t>());
  }
  const json& added = root.contains("added_tokens") && !root["added_tokens"].is_null() ? root["added_tokens"] : json::array();
  if (!added.is_array()) fail(path + ": field \"added_tokens\" must be a list");
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string field = "added_tokens[" + std::to_string(i) + "]";
    const json& id = require(added[i], "id", path, field + ".id");
    if (!id.is_number_integer() || id.get<int64_t>() < 0) fail(path + ": field \"" + field + ".id\" must be a non-negative integer");
    max_id = std::max(max_id, id.get<int32_t>());
  }
  id_to_piece_.assign(max_id + 1, std::string());
  id_to_bytes_.assign(max_id + 1, std::string());
  special_.assign(max_id + 1, 0);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int32_t id = it.value().get<int32_t>();
    id_to_piece_[id] = it.key();
    // A spelling outside the byte-level alphabet decodes as itself.
    id_to_bytes_[id] = byte_level_to_bytes(it.key()).value_or(it.key());
    piece_ids_.emplace(it.key(), id);
    bytes_ids_.emplace(id_to_bytes_[id], id);
  }
  for (int b = 0; b < 256; ++b) {
    auto it = piece_ids_.find(byte_level_char(static_cast<unsigned char>(b)));
    if (it == piece_ids_.end()) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", b);
      fail(path + ": field \"model.vocab\" lacks the byte-level token for byte " + hex +
           " (\"" + byte_level_char(static_cast<unsigned char>(b)) + "\"); is this a byte-level BPE?");
    }
    byte_ids_[b] = it->second;
  }

  const json& merges = require(model, "merges", path, "model.merges");
  if (!merges.is_array()) fail(path + ": field \"model.merges\" must be a list");
  merges_.reserve(merges.size() * 2);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string field = "model.merges[" + std::to_string(rank) + "]";
    const json& m = merges[rank];
    std::string left, right;
    if (m.is_string()) {
      // "a b": exactly one space, as HF requires (byte-level pieces never contain one).
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        fail(path + ": field \"" + field + "\" must be \"left right\" with one space, got \"" + s + "\"");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      fail(path + ": field \"" + field + "\" must be \"left right\" or [\"left\", \"right\"]");
    }
    auto l = piece_ids_.find(left), r = piece_ids_.find(right), merged = piece_ids_.find(left + right);
    if (l == piece_ids_.end() || r == piece_ids_.end() || merged == piece_ids_.end())
      fail(path + ": field \"" + field + "\" (\"" + left + "\" + \"" + right + "\") names a token missing from model.vocab");
    // A repeated pair keeps its first (best) rank.
    merges_.emplace(pair_key(l->second, r->second), Merge{static_cast<int32_t>(rank), merged->second});
  }

  // --- added tokens ---
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string field = "added_tokens[" + std::to_string(i) + "]";
    AddedToken t;
    t.id = added[i]["id"].get<int32_t>();
    t.content = require_string(added[i], "content", path, field + ".content");
    t.special = optional_bool(added[i], "special", false, path, field + ".special");
    t.lstrip = optional_bool(added[i], "lstrip", false, path, field + ".lstrip");
    t.rstrip = optional_bool(added[i], "rstrip", false, path, field + ".rstrip");
    t.single_word = optional_bool(added[i], "single_word", false, path, field + ".single_word");
    if (t.content.empty()) fail(path + ": field \"" + field + ".content\" is empty");
    id_to_piece_[t.id] = t.content;
    id_to_bytes_[t.id] = t.content;  // added tokens are literal text, not byte-level spellings
    special_[t.id] = t.special;
    piece_ids_[t.content] = t.id;
    added_.push_back(t);
  }
  for (size_t i = 0; i < added_.size(); ++i)
    added_by_first_byte_[static_cast<unsigned char>(added_[i].content[0])].push_back(static_cast<int32_t>(i));
  for (auto& list : added_by_first_byte_) {
    // Longest first, so the leftmost match is also the longest (HF's leftmost-longest).
    std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) { return added_[a].content.size() > added_[b].content.size(); });
  }

  // --- normalizer ---
  if (root.contains("normalizer") && !root["normalizer"].is_null()) {
    const std::string ntype = require_string(root["normalizer"], "type", path, "normalizer.type");
    if (ntype != "NFC") fail(path + ": field \"normalizer.type\" is \"" + ntype + "\"; only null or \"NFC\" is supported");
    log::info(path + ": normalizer NFC is not applied; input text is taken as NFC already");
  }

  // --- pre_tokenizer ---
  const json& pre = require(root, "pre_tokenizer", path, "pre_tokenizer");
  if (pre.is_null()) fail(path + ": field \"pre_tokenizer\" is null; byte-level BPE needs ByteLevel");
  const std::string ptype = require_string(pre, "type", path, "pre_tokenizer.type");
  auto read_byte_level = [&](const json& bl, const std::string& field, bool regex_allowed) {
    add_prefix_space_ = optional_bool(bl, "add_prefix_space", false, path, field + ".add_prefix_space");
    const bool use_regex = optional_bool(bl, "use_regex", true, path, field + ".use_regex");
    if (use_regex && !regex_allowed)
      fail(path + ": field \"" + field + ".use_regex\" must be false after a Split (two splits are not supported)");
    return use_regex;
  };
  if (ptype == "ByteLevel") {
    if (!read_byte_level(pre, "pre_tokenizer", true))
      fail(path + ": field \"pre_tokenizer.use_regex\" is false with no Split: unsplit byte-level BPE is not supported");
    pattern_ = SplitPattern::gpt2;
  } else if (ptype == "Sequence") {
    const json& list = require(pre, "pretokenizers", path, "pre_tokenizer.pretokenizers");
    if (!list.is_array() || list.size() != 2)
      fail(path + ": field \"pre_tokenizer.pretokenizers\" must be [Split, ByteLevel]");
    const std::string f0 = "pre_tokenizer.pretokenizers[0]", f1 = "pre_tokenizer.pretokenizers[1]";
    if (require_string(list[0], "type", path, f0 + ".type") != "Split")
      fail(path + ": field \"" + f0 + ".type\" must be \"Split\"");
    if (require_string(list[1], "type", path, f1 + ".type") != "ByteLevel")
      fail(path + ": field \"" + f1 + ".type\" must be \"ByteLevel\"");
    const json& pattern = require(list[0], "pattern", path, f0 + ".pattern");
    if (!pattern.is_object() || !pattern.contains("Regex") || !pattern["Regex"].is_string())
      fail(path + ": field \"" + f0 + ".pattern\" must be {\"Regex\": ...}");
    const std::string regex = pattern["Regex"].get<std::string>();
    auto known = split_pattern_from_regex(regex);
    if (!known)
      fail(path + ": field \"" + f0 + ".pattern.Regex\" is not one of the supported split patterns (GPT-2, Llama-3, Qwen2): " + regex);
    pattern_ = *known;
    const std::string behavior = require_string(list[0], "behavior", path, f0 + ".behavior");
    if (behavior != "Isolated") fail(path + ": field \"" + f0 + ".behavior\" is \"" + behavior + "\"; only \"Isolated\" is supported");
    if (optional_bool(list[0], "invert", false, path, f0 + ".invert")) fail(path + ": field \"" + f0 + ".invert\" must be false");
    read_byte_level(list[1], f1, false);
  } else {
    fail(path + ": field \"pre_tokenizer.type\" is \"" + ptype + "\"; only ByteLevel or Sequence[Split, ByteLevel] is supported");
  }

  // --- decoder / post_processor: checked, since their behaviour is built in ---
  if (root.contains("decoder") && !root["decoder"].is_null()) {
    const std::string dtype = require_string(root["decoder"], "type", path, "decoder.type");
    if (dtype != "ByteLevel") fail(path + ": field \"decoder.type\" is \"" + dtype + "\"; only \"ByteLevel\" is supported");
  }
  if (root.contains("post_processor") && !root["post_processor"].is_null()) {
    std::function<void(const json&, const std::string&)> check = [&](const json& pp, const std::string& field) {
      const std::string t = require_string(pp, "type", path, field + ".type");
      if (t == "Sequence") {
        const json& list = require(pp, "processors", path, field + ".processors");
        for (size_t i = 0; i < list.size(); ++i) check(list[i], field + ".processors[" + std::to_string(i) + "]");
      } else if (t != "ByteLevel" && t != "TemplateProcessing") {
        fail(path + ": field \"" + field + ".type\" is \"" + t + "\"; only ByteLevel, TemplateProcessing or a Sequence of them is supported");
      }
    };
    check(root["post_processor"], "post_processor");
  }
}

void BpeTokenizer::load_special_ids(const std::string& model_dir) {
  const std::string tc_path = model_dir + "/tokenizer_config.json";
  const std::string c_path = model_dir + "/config.json";
  const std::string g_path = model_dir + "/generation_config.json";
  const auto tc = read_json(tc_path, false);
  const auto config = read_json(c_path, false);
  const auto generation = read_json(g_path, false);

  // bos_token etc.: a string, {"content": ...}, or null.
  auto token_id = [&](const std::string& key) -> std::optional<int32_t> {
    if (!tc || !tc->is_object() || !tc->contains(key) || (*tc)[key].is_null()) return std::nullopt;
    const json& v = (*tc)[key];
    std::string text;
    if (v.is_string()) {
      text = v.get<std::string>();
    } else if (v.is_object() && v.contains("content") && v["content"].is_string()) {
      text = v["content"].get<std::string>();
    } else {
      fail(tc_path + ": field \"" + key + "\" must be a string or {\"content\": string}");
    }
    auto id = piece_to_id(text);
    if (!id) fail(tc_path + ": field \"" + key + "\" is \"" + text + "\", which is not a token of tokenizer.json");
    return id;
  };
  auto checked = [&](std::vector<int32_t> ids, const std::string& path, const std::string& key) {
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size())
        fail(path + ": field \"" + key + "\" holds id " + std::to_string(id) + ", outside the vocabulary of " + std::to_string(vocab_size()));
    }
    return ids;
  };
  auto first = [](const std::vector<int32_t>& ids) -> std::optional<int32_t> {
    return ids.empty() ? std::nullopt : std::optional<int32_t>(ids.front());
  };

  std::vector<int32_t> config_eos, generation_eos;
  std::optional<int32_t> config_bos, config_pad;
  if (config && config->is_object()) {
    config_eos = checked(id_list(*config, "eos_token_id", c_path), c_path, "eos_token_id");
    config_bos = first(checked(id_list(*config, "bos_token_id", c_path), c_path, "bos_token_id"));
    config_pad = first(checked(id_list(*config, "pad_token_id", c_path), c_path, "pad_token_id"));
  }
  if (generation && generation->is_object()) {
    generation_eos = checked(id_list(*generation, "eos_token_id", g_path), g_path, "eos_token_id");
    if (!config_bos) config_bos = first(checked(id_list(*generation, "bos_token_id", g_path), g_path, "bos_token_id"));
  }

  bos_id_ = token_id("bos_token");
  if (!bos_id_) bos_id_ = config_bos;
  eos_id_ = token_id("eos_token");
  if (!eos_id_) eos_id_ = first(generation_eos);
  if (!eos_id_) eos_id_ = first(config_eos);
  pad_id_ = token_id("pad_token");
  if (!pad_id_) pad_id_ = config_pad;
  if (tc && tc->is_object()) add_bos_token_ = optional_bool(*tc, "add_bos_token", true, tc_path, "add_bos_token");

  if (bos_id_) bos_text_ = id_to_bytes_[*bos_id_];
  if (eos_id_) eos_text_ = id_to_bytes_[*eos_id_];
  auto add_stop = [&](int32_t id) {
    if (std::find(stop_ids_.begin(), stop_ids_.end(), id) == stop_ids_.end()) stop_ids_.push_back(id);
  };
  if (eos_id_) add_stop(*eos_id_);
  for (int32_t id : generation_eos) add_stop(id);
  for (int32_t id : config_eos) add_stop(id);
}

const BpeTokenizer::Merge* BpeTokenizer::find_merge(int32_t left, int32_t right) const {
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

std::vector<int32_t> BpeTokenizer::merge_piece(std::string_view piece) const {
  // Symbols form a linked list over the piece; the heap holds candidate merges by
  // (rank, position). An entry is stale when either side has since merged; the pair's rank
  // is unique, so checking the rank of the current pair at that position detects it.
  struct Symbol {
    int32_t id, prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank, pos;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  const int32_t n = static_cast<int32_t>(piece.size());
  std::vector<Symbol> symbols(n);
  for (int32_t i = 0; i < n; ++i)
    symbols[i] = {byte_ids_[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1, true};
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto consider = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    if (const Merge* m = find_merge(symbols[pos].id, symbols[next].id)) heap.push({m->rank, pos});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const Merge* m = find_merge(left.id, right.id);
    if (!m || m->rank != top.rank) continue;
    left.id = m->id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  std::vector<int32_t> ids;
  for (int32_t i = 0; i >= 0 && i < n; i = symbols[i].next) ids.push_back(symbols[i].id);
  return ids;
}

std::vector<int32_t> BpeTokenizer::merge_piece_reference(std::string_view piece) const {
  std::vector<int32_t> ids;
  for (unsigned char b : piece) ids.push_back(byte_ids_[b]);
  while (true) {
    const Merge* best = nullptr;
    size_t best_pos = 0;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const Merge* m = find_merge(ids[i], ids[i + 1]);
      if (m && (!best || m->rank < best->rank)) {
        best = m;
        best_pos = i;
      }
    }
    if (!best) return ids;
    ids[best_pos] = best->id;
    ids.erase(ids.begin() + best_pos + 1);
  }
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& ids) const {
  if (piece.size() == 1) {
    ids.push_back(byte_ids_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  std::string key(piece);
  if (ignore_merges_) {
    // Llama-3: a pre-token that is itself a vocabulary entry is taken whole.
    auto it = bytes_ids_.find(key);
    if (it != bytes_ids_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> merged = merge_piece(piece);
  ids.insert(ids.end(), merged.begin(), merged.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= k_cache_limit) cache_.clear();
  cache_.emplace(std::move(key), std::move(merged));
}

void BpeTokenizer::encode_segment(std::string_view segment, std::vector<int32_t>& ids) const {
  if (segment.empty()) return;
  std::string prefixed;
  if (add_prefix_space_ && segment[0] != ' ') {
    prefixed = " " + std::string(segment);
    segment = prefixed;
  }
  std::vector<std::string_view> pieces;
  pretokenize(segment, pattern_, pieces);
  for (std::string_view piece : pieces) encode_piece(piece, ids);
}

bool BpeTokenizer::single_word_ok(std::string_view text, size_t begin, size_t end) const {
  auto is_word = [](char32_t cp) {
    const CharClass c = char_class(cp);
    return cp == '_' || c == CharClass::letter || c == CharClass::number;
  };
  if (end < text.size()) {
    size_t length = 1;
    if (is_word(decode_utf8(text, end, length))) return false;
  }
  if (begin > 0) {
    size_t start = begin - 1;
    while (start > 0 && begin - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    size_t length = 1;
    if (is_word(decode_utf8(text, start, length))) return false;
  }
  return true;
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (options.add_bos && bos_id_ && add_bos_token_) ids.push_back(*bos_id_);
  size_t segment_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const AddedToken* match = nullptr;
    for (int32_t index : added_by_first_byte_[static_cast<unsigned char>(text[pos])]) {
      const AddedToken& t = added_[index];
      if (t.special && !options.parse_special) continue;
      if (text.compare(pos, t.content.size(), t.content) != 0) continue;
      if (t.single_word && !single_word_ok(text, pos, pos + t.content.size())) continue;
      match = &t;
      break;
    }
    if (!match) {
      ++pos;
      continue;
    }
    size_t left = pos, right = pos + match->content.size();
    if (match->lstrip)
      while (left > segment_start && is_ascii_space(text[left - 1])) --left;
    if (match->rstrip)
      while (right < text.size() && is_ascii_space(text[right])) ++right;
    encode_segment(text.substr(segment_start, left - segment_start), ids);
    ids.push_back(match->id);
    pos = segment_start = right;
  }
  encode_segment(text.substr(segment_start), ids);
  if (options.add_eos && eos_id_) ids.push_back(*eos_id_);
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  for (int32_t id : ids) {
    if (skip_special && is_special(id)) continue;
    out += token_bytes(id);
  }
  return out;
}

std::string BpeTokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) fail("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(vocab_size()));
  return id_to_bytes_[id];
}

std::string BpeTokenizer::id_to_piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) fail("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(vocab_size()));
  return id_to_piece_[id];
}

std::optional<int32_t> BpeTokenizer::piece_to_id(std::string_view piece) const {
  auto it = piece_ids_.find(std::string(piece));
  if (it == piece_ids_.end()) return std::nullopt;
  return it->second;
}

bool BpeTokenizer::is_special(int32_t id) const { return id >= 0 && id < vocab_size() && special_[id]; }

}  // namespace lathe
