// GPT-2's byte-to-unicode mapping: every byte value is spelled as one printable code point,
// so byte-level BPE vocabularies are plain strings ("Ġthe" is " the").
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace lathe {

// The UTF-8 spelling of byte b (e.g. 0x20 -> "Ġ").
const std::string& byte_level_char(unsigned char b);
// Raw bytes -> byte-level spelling.
std::string bytes_to_byte_level(std::string_view bytes);
// Byte-level spelling -> raw bytes; nullopt when a character is not in the mapping.
std::optional<std::string> byte_level_to_bytes(std::string_view spelling);

}  // namespace lathe
