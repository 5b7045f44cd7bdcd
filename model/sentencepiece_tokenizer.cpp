// SentencePiece tokenizer behind the Tokenizer interface; see sentencepiece_tokenizer.h for
// where it follows HF's slow LlamaTokenizer rather than plain sentencepiece.
#include "model/sentencepiece_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/sentencepiece_shim_loader.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kSpaceSymbol = "\xE2\x96\x81";              // "▁"
const std::string kUnknownSurface = " \xE2\x81\x87 ";         // " ⁇ ", sentencepiece's <unk>

std::optional<json> read_json_if_exists(const std::string& path) {
  if (!fs::exists(path)) return std::nullopt;
  try {
    return json::parse(read_file(path));
  } catch (const json::exception& e) {
    fail(path + ": invalid JSON (" + e.what() + ")");
  }
}

// bos_token / eos_token / pad_token: a string, an AddedToken object {"content": ...}, or null.
std::optional<std::string> token_text(const json& config, const std::string& key,
                                      const std::string& path) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  fail(path + ": " + key + " must be a string or an object with a \"content\" string");
}

bool bool_field(const json& config, const std::string& key, bool fallback, const std::string& path) {
  if (!config.contains(key) || config[key].is_null()) return fallback;
  if (!config[key].is_boolean()) fail(path + ": " + key + " must be true or false");
  return config[key].get<bool>();
}

// eos_token_id and friends: an int or a list of ints (generation_config lists several).
std::vector<int32_t> id_list(const json& config, const std::string& key, const std::string& path) {
  std::vector<int32_t> ids;
  if (!config.contains(key) || config[key].is_null()) return ids;
  const json& v = config[key];
  if (v.is_number_integer()) {
    ids.push_back(v.get<int32_t>());
  } else if (v.is_array()) {
    for (const json& e : v) {
      if (!e.is_number_integer()) fail(path + ": " + key + " must be an integer or a list of integers");
      ids.push_back(e.get<int32_t>());
    }
  } else {
    fail(path + ": " + key + " must be an integer or a list of integers");
  }
  return ids;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

// libsentencepiece through the C functions of lathe_sentencepiece_shim (sentencepiece_shim_loader.h).
class SentencePieceModel {
 public:
  explicit SentencePieceModel(const std::string& path) {
    const Api& api = this->api();
    std::string message;
    handle_ = api.load(path.c_str(), &append, &message);
    if (!handle_) fail(path + ": not a valid SentencePiece model (" + message + ")");
  }
  ~SentencePieceModel() { api().free(handle_); }
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  int GetPieceSize() const { return api().size(handle_); }
  std::vector<int> Encode(std::string_view text) const {
    std::vector<int> ids;
    api().encode(handle_, text.data(), text.size(), &ids);
    return ids;
  }
  std::string Decode(const std::vector<int>& ids) const {
    std::string text;
    api().decode(handle_, ids.data(), ids.size(), &append, &text);
    return text;
  }
  std::string IdToPiece(int id) const {
    std::string piece;
    api().id_to_piece(handle_, id, &append, &piece);
    return piece;
  }
  int PieceToId(std::string_view piece) const { return api().piece_to_id(handle_, piece.data(), piece.size()); }
  bool IsControl(int id) const { return api().piece_type(handle_, id) & 1; }
  bool IsUnknown(int id) const { return api().piece_type(handle_, id) & 2; }
  bool IsByte(int id) const { return api().piece_type(handle_, id) & 4; }
  bool IsUnused(int id) const { return api().piece_type(handle_, id) & 8; }
  int unk_id() const { return api().reserved_id(handle_, 0); }
  int bos_id() const { return api().reserved_id(handle_, 1); }
  int eos_id() const { return api().reserved_id(handle_, 2); }
  int pad_id() const { return api().reserved_id(handle_, 3); }

 private:
  using Sink = void (*)(void*, const char*, size_t);
  struct Api {
    void* (*load)(const char*, Sink, void*);
    void (*free)(void*);
    int (*size)(void*);
    void (*encode)(void*, const char*, size_t, std::vector<int>*);
    void (*decode)(void*, const int*, size_t, Sink, void*);
    void (*id_to_piece)(void*, int, Sink, void*);
    int (*piece_to_id)(void*, const char*, size_t);
    int (*piece_type)(void*, int);
    int (*reserved_id)(void*, int);
  };
  static void append(void* context, const char* data, size_t size) {
    static_cast<std::string*>(context)->append(data, size);
  }
  static const Api& api() {
    static const Api api = [] {
      const auto sym = [](const char* name) { return sentencepiece_shim_symbol(name); };
      Api a;
      a.load = reinterpret_cast<decltype(a.load)>(sym("lathe_spm_load"));
      a.free = reinterpret_cast<decltype(a.free)>(sym("lathe_spm_free"));
      a.size = reinterpret_cast<decltype(a.size)>(sym("lathe_spm_size"));
      a.encode = reinterpret_cast<decltype(a.encode)>(sym("lathe_spm_encode"));
      a.decode = reinterpret_cast<decltype(a.decode)>(sym("lathe_spm_decode"));
      a.id_to_piece = reinterpret_cast<decltype(a.id_to_piece)>(sym("lathe_spm_id_to_piece"));
      a.piece_to_id = reinterpret_cast<decltype(a.piece_to_id)>(sym("lathe_spm_piece_to_id"));
      a.piece_type = reinterpret_cast<decltype(a.piece_type)>(sym("lathe_spm_piece_type"));
      a.reserved_id = reinterpret_cast<decltype(a.reserved_id)>(sym("lathe_spm_reserved_id"));
      return a;
    }();
    return api;
  }
  void* handle_ = nullptr;
};

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_dir)
    : model_path_(model_dir + "/tokenizer.model") {
  kind_ = "sentencepiece";
  if (!fs::exists(model_path_))
    fail(model_path_ + ": no such file (a SentencePiece model folder needs tokenizer.model)");
  sp_ = std::make_unique<SentencePieceModel>(model_path_);
  sp_size_ = sp_->GetPieceSize();

  const std::string config_path = model_dir + "/tokenizer_config.json";
  if (auto config = read_json_if_exists(config_path)) {
    legacy_ = bool_field(*config, "legacy", true, config_path);
    add_bos_token_ = bool_field(*config, "add_bos_token", true, config_path);
    add_eos_token_ = bool_field(*config, "add_eos_token", false, config_path);
    load_added_tokens(config_path);
  }

  for (int32_t id = 0; id < sp_size_; ++id)
    if (sp_->IsControl(id) && !added_.count(id)) split_tokens_.emplace_back(sp_->IdToPiece(id), id);
  for (const auto& [id, token] : added_) split_tokens_.emplace_back(token.content, id);
  split_tokens_.erase(std::remove_if(split_tokens_.begin(), split_tokens_.end(),
                                     [](const auto& t) { return t.first.empty(); }),
                      split_tokens_.end());
  std::stable_sort(split_tokens_.begin(), split_tokens_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  // Whether decode drops the dummy-prefix space depends on the model's normalizer spec
  // (add_dummy_prefix / remove_extra_whitespaces), which the installed headers do not expose;
  // ask sentencepiece itself with the first ordinary "▁word" piece.
  for (int32_t id = 0; id < sp_size_; ++id) {
    const std::string piece = sp_->IdToPiece(id);
    if (sp_->IsControl(id) || sp_->IsByte(id) || sp_->IsUnknown(id) || sp_->IsUnused(id)) continue;
    if (!starts_with(piece, kSpaceSymbol) || piece.size() == kSpaceSymbol.size() ||
        piece.compare(kSpaceSymbol.size(), kSpaceSymbol.size(), kSpaceSymbol) == 0)
      continue;
    const std::string text = sp_->Decode({id});
    strip_leading_space_ = !starts_with(text, " ");
    break;
  }

  load_special_ids(model_dir);
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

void SentencePieceTokenizer::load_added_tokens(const std::string& config_path) {
  const json config = *read_json_if_exists(config_path);
  if (!config.contains("added_tokens_decoder")) return;
  const json& decoder = config["added_tokens_decoder"];
  if (!decoder.is_object()) fail(config_path + ": added_tokens_decoder must be an object");
  for (const auto& [key, value] : decoder.items()) {
    int32_t id = 0;
    try {
      std::size_t used = 0;
      id = std::stoi(key, &used);
      if (used != key.size() || id < 0) throw std::invalid_argument(key);
    } catch (const std::exception&) {
      fail(config_path + ": added_tokens_decoder key \"" + key + "\" is not a token id");
    }
    if (!value.is_object() || !value.contains("content") || !value["content"].is_string())
      fail(config_path + ": added_tokens_decoder[" + key + "] needs a \"content\" string");
    AddedToken token;
    token.content = value["content"].get<std::string>();
    token.special = bool_field(value, "special", false, config_path);
    added_by_text_[token.content] = id;
    added_[id] = std::move(token);
  }
}

std::optional<int32_t> SentencePieceTokenizer::id_for_text(const std::string& text) const {
  return piece_to_id(text);
}

void SentencePieceTokenizer::load_special_ids(const std::string& model_dir) {
  const std::string tc_path = model_dir + "/tokenizer_config.json";
  const std::string c_path = model_dir + "/config.json";
  const std::string gc_path = model_dir + "/generation_config.json";
  const auto tc = read_json_if_exists(tc_path);
  const auto c = read_json_if_exists(c_path);
  const auto gc = read_json_if_exists(gc_path);

  // Precedence: the tokenizer's own token text, then generation_config.json, then
  // config.json, then the ids built into the SentencePiece model.
  auto resolve = [&](const std::string& text_key, const std::string& id_key,
                     int sp_default) -> std::optional<int32_t> {
    if (tc) {
      if (auto text = token_text(*tc, text_key, tc_path)) {
        if (auto id = id_for_text(*text)) return id;
        fail(tc_path + ": " + text_key + " \"" + *text + "\" is not in the vocabulary of " + model_path_);
      }
    }
    for (const auto& [config, path] : {std::pair{&gc, &gc_path}, std::pair{&c, &c_path}}) {
      if (!*config) continue;
      const auto ids = id_list(**config, id_key, *path);
      if (!ids.empty()) return ids.front();
    }
    if (sp_default >= 0) return sp_default;
    return std::nullopt;
  };
  bos_id_ = resolve("bos_token", "bos_token_id", sp_->bos_id());
  eos_id_ = resolve("eos_token", "eos_token_id", sp_->eos_id());
  pad_id_ = resolve("pad_token", "pad_token_id", sp_->pad_id());
  for (auto* id : {&bos_id_, &eos_id_, &pad_id_})
    if (*id && (**id < 0 || **id >= vocab_size()))
      fail(model_dir + ": special token id " + std::to_string(**id) + " is outside the vocabulary (size " +
           std::to_string(vocab_size()) + ")");
  if (bos_id_) bos_text_ = id_to_piece(*bos_id_);
  if (eos_id_) eos_text_ = id_to_piece(*eos_id_);

  auto add_stop = [&](int32_t id) {
    if (id >= 0 && id < vocab_size() && std::find(stop_ids_.begin(), stop_ids_.end(), id) == stop_ids_.end())
      stop_ids_.push_back(id);
  };
  if (eos_id_) add_stop(*eos_id_);
  if (gc) for (int32_t id : id_list(*gc, "eos_token_id", gc_path)) add_stop(id);
  if (c) for (int32_t id : id_list(*c, "eos_token_id", c_path)) add_stop(id);
}

std::vector<int32_t> SentencePieceTokenizer::encode_segment(std::string_view text, bool dummy_prefix) const {
  std::vector<int> ids;
  if (text.empty()) return {};
  if (dummy_prefix) {
    ids = sp_->Encode(text);
  } else {
    // HF's non-legacy trick: "<unk>" is spelled out as ordinary characters, so encoding
    // "<unk>" + text and dropping those pieces leaves text encoded without the prefix space.
    const std::string unk = sp_->IdToPiece(sp_->unk_id());
    const std::vector<int> unk_ids = sp_->Encode(unk);
    ids = sp_->Encode(unk + std::string(text));
    ids.erase(ids.begin(), ids.begin() + std::min(ids.size(), unk_ids.size()));
  }
  return {ids.begin(), ids.end()};
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> out;
  if (options.add_bos && bos_id_) out.push_back(*bos_id_);
  std::size_t pos = 0;
  bool first_segment = true;
  while (pos <= text.size()) {
    // The earliest special-token string at or after pos (longest wins at equal positions,
    // because split_tokens_ is sorted longest first and only a strictly earlier hit replaces).
    std::size_t best = std::string_view::npos;
    const std::pair<std::string, int32_t>* hit = nullptr;
    for (const auto& token : split_tokens_) {
      const bool special = is_special(token.second);
      if (special && !options.parse_special) continue;
      const std::size_t at = text.find(token.first, pos);
      if (at != std::string_view::npos && at < best) {
        best = at;
        hit = &token;
      }
    }
    const std::string_view segment = text.substr(pos, hit ? best - pos : std::string_view::npos);
    const auto ids = encode_segment(segment, first_segment || legacy_);
    out.insert(out.end(), ids.begin(), ids.end());
    first_segment = false;
    if (!hit) break;
    out.push_back(hit->second);
    pos = best + hit->first.size();
  }
  if (options.add_eos && eos_id_) out.push_back(*eos_id_);
  return out;
}

void SentencePieceTokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    fail("token id " + std::to_string(id) + " is outside the vocabulary of " + model_path_ + " (size " +
         std::to_string(vocab_size()) + ")");
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    out += sp_->Decode(run);
    run.clear();
  };
  for (int32_t id : ids) {
    check_id(id);
    if (is_special(id)) {
      if (skip_special) continue;  // a skipped special leaves the run intact, as HF drops it first
      flush();
      out += id_to_piece(id);
    } else if (id >= sp_size_) {
      flush();  // an added non-special token the SentencePiece model does not know
      out += added_.at(id).content;
    } else {
      run.push_back(id);
    }
  }
  flush();
  return out;
}

std::string SentencePieceTokenizer::token_bytes(int32_t id) const {
  check_id(id);
  if (auto it = added_.find(id); it != added_.end()) return it->second.content;
  if (sp_->IsControl(id)) return sp_->IdToPiece(id);
  if (sp_->IsUnknown(id)) return kUnknownSurface;
  const std::string piece = sp_->IdToPiece(id);
  if (sp_->IsByte(id)) return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
  std::string bytes;
  for (std::size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
      bytes += ' ';
      i += kSpaceSymbol.size();
    } else {
      bytes += piece[i++];
    }
  }
  return bytes;
}

std::string SentencePieceTokenizer::id_to_piece(int32_t id) const {
  check_id(id);
  if (auto it = added_.find(id); it != added_.end()) return it->second.content;
  return sp_->IdToPiece(id);
}

std::optional<int32_t> SentencePieceTokenizer::piece_to_id(std::string_view piece) const {
  if (auto it = added_by_text_.find(std::string(piece)); it != added_by_text_.end()) return it->second;
  const int id = sp_->PieceToId(piece);
  if (id < 0 || id >= sp_size_ || sp_->IdToPiece(id) != piece) return std::nullopt;  // unk fallback
  return id;
}

int32_t SentencePieceTokenizer::vocab_size() const {
  return added_.empty() ? sp_size_ : std::max(sp_size_, added_.rbegin()->first + 1);
}

bool SentencePieceTokenizer::is_special(int32_t id) const {
  if (auto it = added_.find(id); it != added_.end()) return it->second.special;
  return id >= 0 && id < sp_size_ && sp_->IsControl(id);
}

bool SentencePieceTokenizer::strips_leading_space() const { return strip_leading_space_; }

}  // namespace lathe
