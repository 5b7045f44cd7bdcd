// bytes_to_unicode() of GPT-2's encoder.py: printable Latin-1 bytes map to themselves, the
// other 68 bytes to U+0100 onwards in byte order.
#include "model/byte_level.h"

#include <array>
#include <unordered_map>

#include "model/unicode_class.h"

namespace lathe {
namespace {

std::string utf8_encode(char32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
  return out;
}

struct ByteLevelTables {
  std::array<std::string, 256> spelling;
  std::unordered_map<char32_t, unsigned char> to_byte;
};

const ByteLevelTables& tables() {
  static const ByteLevelTables t = [] {
    ByteLevelTables t;
    auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = printable(b) ? char32_t(b) : next++;
      t.spelling[b] = utf8_encode(cp);
      t.to_byte[cp] = static_cast<unsigned char>(b);
    }
    return t;
  }();
  return t;
}

}  // namespace

const std::string& byte_level_char(unsigned char b) { return tables().spelling[b]; }

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += tables().spelling[b];
  return out;
}

std::optional<std::string> byte_level_to_bytes(std::string_view spelling) {
  const auto& to_byte = tables().to_byte;
  std::string out;
  out.reserve(spelling.size());
  for (size_t pos = 0; pos < spelling.size();) {
    size_t length = 1;
    const char32_t cp = decode_utf8(spelling, pos, length);
    auto it = to_byte.find(cp);
    if (it == to_byte.end()) return std::nullopt;
    out += char(it->second);
    pos += length;
  }
  return out;
}

}  // namespace lathe
