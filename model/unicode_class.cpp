// Code point classes from generated range tables (model/unicode_tables.inc); a flat table
// covers the Basic Multilingual Plane so the common case is one load, not a binary search.
#include "model/unicode_class.h"

#include <algorithm>
#include <array>
#include <iterator>

namespace lathe {
namespace {

struct CodepointRange {
  char32_t first, last;
};

#include "model/unicode_tables.inc"

template <size_t N>
bool in_ranges(const CodepointRange (&table)[N], char32_t cp) {
  auto it = std::upper_bound(std::begin(table), std::end(table), cp,
                             [](char32_t value, const CodepointRange& r) { return value < r.first; });
  if (it == std::begin(table)) return false;
  --it;
  return cp <= it->last;
}

CharClass class_by_search(char32_t cp) {
  if (in_ranges(k_white_space_ranges, cp)) return CharClass::space;
  if (in_ranges(k_letter_ranges, cp)) return CharClass::letter;
  if (in_ranges(k_number_ranges, cp)) return CharClass::number;
  return CharClass::other;
}

const std::array<CharClass, 0x10000>& bmp_table() {
  static const auto table = [] {
    std::array<CharClass, 0x10000> t{};
    for (char32_t cp = 0; cp < 0x10000; ++cp) t[cp] = class_by_search(cp);
    return t;
  }();
  return table;
}

}  // namespace

CharClass char_class(char32_t cp) {
  if (cp < 0x10000) return bmp_table()[cp];
  if (cp >= k_invalid_byte_base) return CharClass::other;
  return class_by_search(cp);
}

char32_t decode_utf8(std::string_view text, size_t pos, size_t& length) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  const size_t left = text.size() - pos;
  const unsigned char b0 = s[0];
  length = 1;
  if (b0 < 0x80) return b0;
  auto cont = [&](size_t i) { return i < left && (s[i] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) {
    length = 2;
    return (char32_t(b0 & 0x1F) << 6) | (s[1] & 0x3F);
  }
  if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
    char32_t cp = (char32_t(b0 & 0x0F) << 12) | (char32_t(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    // Overlong forms and surrogates are not UTF-8.
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
      length = 3;
      return cp;
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    char32_t cp = (char32_t(b0 & 0x07) << 18) | (char32_t(s[1] & 0x3F) << 12) |
                  (char32_t(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    if (cp >= 0x10000 && cp <= 0x10FFFF) {
      length = 4;
      return cp;
    }
  }
  return k_invalid_byte_base + b0;
}

}  // namespace lathe
