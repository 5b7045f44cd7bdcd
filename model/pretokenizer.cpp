// Hand-written matchers for the three byte-level BPE split regexes. The text is decoded once
// into code points and classes; each matcher then returns where the leftmost match starting
// at a position ends, trying the regex's alternatives in order.
#include "model/pretokenizer.h"

#include <string>

#include "model/unicode_class.h"

namespace lathe {
namespace {

constexpr std::string_view k_gpt2_regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view k_llama3_regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view k_qwen2_regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct DecodedText {
  std::vector<char32_t> cps;
  std::vector<CharClass> classes;
  std::vector<size_t> offsets;  // byte offset of each code point, plus the text size
};

void decode_text(std::string_view text, DecodedText& out) {
  out.cps.clear();
  out.classes.clear();
  out.offsets.clear();
  for (size_t pos = 0; pos < text.size();) {
    size_t length = 1;
    const char32_t cp = decode_utf8(text, pos, length);
    out.cps.push_back(cp);
    out.classes.push_back(char_class(cp));
    out.offsets.push_back(pos);
    pos += length;
  }
  out.offsets.push_back(text.size());
}

class Matcher {
 public:
  explicit Matcher(const DecodedText& d) : cp_(d.cps), cls_(d.classes), n_(d.cps.size()) {}

  size_t run_end(size_t i, CharClass c) const {
    while (i < n_ && cls_[i] == c) ++i;
    return i;
  }
  bool is_newline(size_t i) const { return cp_[i] == '\r' || cp_[i] == '\n'; }

  // 's 't 're 've 'm 'll 'd; returns the end or 0.
  size_t contraction(size_t i, bool ignore_case) const {
    if (cp_[i] != '\'' || i + 1 >= n_) return 0;
    auto fold = [&](char32_t c) -> char32_t {
      if (!ignore_case) return c;
      if (c >= 'A' && c <= 'Z') return c + ('a' - 'A');
      if (c == 0x17F) return 's';  // LATIN SMALL LETTER LONG S case-folds to s
      return c;
    };
    const char32_t c1 = fold(cp_[i + 1]);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
    if (i + 2 < n_) {
      const char32_t c2 = fold(cp_[i + 2]);
      if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return i + 3;
    }
    return 0;
  }

  // \s+(?!\S) then \s+, for a whitespace run starting at i.
  size_t trailing_space(size_t i) const {
    const size_t e = run_end(i, CharClass::space);
    if (e == n_) return e;
    if (e - 1 > i) return e - 1;  // give back the space that precedes the next token
    return e;
  }

  size_t gpt2(size_t i) const {
    if (size_t e = contraction(i, false)) return e;
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' share one shape.
    size_t j = i;
    if (cp_[i] == ' ' && i + 1 < n_ && cls_[i + 1] != CharClass::space) j = i + 1;
    if (cls_[j] != CharClass::space) return run_end(j, cls_[j]);
    return trailing_space(i);
  }

  size_t llama(size_t i, size_t max_digits) const {
    if (size_t e = contraction(i, true)) return e;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (cls_[i] == CharClass::letter) return run_end(i, CharClass::letter);
    if (!is_newline(i) && cls_[i] != CharClass::number && i + 1 < n_ && cls_[i + 1] == CharClass::letter)
      return run_end(i + 1, CharClass::letter);
    // \p{N}{1,3} (Llama-3) or \p{N} (Qwen2)
    if (cls_[i] == CharClass::number) {
      size_t e = i;
      while (e < n_ && e - i < max_digits && cls_[e] == CharClass::number) ++e;
      return e;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    size_t j = i;
    if (cp_[i] == ' ' && i + 1 < n_ && cls_[i + 1] == CharClass::other) j = i + 1;
    if (cls_[j] == CharClass::other) {
      size_t e = run_end(j, CharClass::other);
      while (e < n_ && is_newline(e)) ++e;
      return e;
    }
    // \s*[\r\n]+ : \s* backtracks to the last newline of the whitespace run.
    const size_t e = run_end(i, CharClass::space);
    for (size_t m = e; m > i; --m) {
      if (is_newline(m - 1)) return m;
    }
    return trailing_space(i);
  }

 private:
  const std::vector<char32_t>& cp_;
  const std::vector<CharClass>& cls_;
  size_t n_;
};

}  // namespace

std::string_view split_pattern_regex(SplitPattern pattern) {
  switch (pattern) {
    case SplitPattern::gpt2: return k_gpt2_regex;
    case SplitPattern::llama3: return k_llama3_regex;
    case SplitPattern::qwen2: return k_qwen2_regex;
  }
  return k_gpt2_regex;
}

std::optional<SplitPattern> split_pattern_from_regex(std::string_view regex) {
  for (SplitPattern p : {SplitPattern::gpt2, SplitPattern::llama3, SplitPattern::qwen2}) {
    if (regex == split_pattern_regex(p)) return p;
  }
  return std::nullopt;
}

void pretokenize(std::string_view text, SplitPattern pattern, std::vector<std::string_view>& pieces) {
  // Reused across calls: pre-tokenization runs once per text segment on the hot path.
  thread_local DecodedText decoded;
  decode_text(text, decoded);
  const Matcher matcher(decoded);
  const size_t n = decoded.cps.size();
  for (size_t i = 0; i < n;) {
    size_t e = 0;
    switch (pattern) {
      case SplitPattern::gpt2: e = matcher.gpt2(i); break;
      case SplitPattern::llama3: e = matcher.llama(i, 3); break;
      case SplitPattern::qwen2: e = matcher.llama(i, 1); break;
    }
    const size_t begin = decoded.offsets[i];
    pieces.push_back(text.substr(begin, decoded.offsets[e] - begin));
    i = e;
  }
}

}  // namespace lathe
