// Unicode helpers for the byte-level BPE pre-tokenizer: the character class of a code point
// (\p{L}, \p{N}, \s or other) and a lenient UTF-8 decoder.
// Departure: the tables come from the Unicode version of the generating Python
// (scripts/gen_unicode_tables.py), which can lag the one Hugging Face's Oniguruma uses for
// characters assigned since then.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lathe {

enum class CharClass : uint8_t { other = 0, letter = 1, number = 2, space = 3 };

CharClass char_class(char32_t cp);

// Decodes one code point at text[pos]; sets length to the bytes consumed. A byte that does
// not start a well-formed sequence decodes as itself plus 0x110000 (outside Unicode), length
// 1, so invalid input still splits and round-trips byte for byte.
char32_t decode_utf8(std::string_view text, size_t pos, size_t& length);

constexpr char32_t k_invalid_byte_base = 0x110000;

}  // namespace lathe
