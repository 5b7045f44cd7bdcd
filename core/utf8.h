// Small UTF-8 helpers: where the complete characters of a byte buffer end and U+FFFD for
// invalid bytes (the tokenizers' decoders, DecodeStream, the server's JSON), and a validity
// check (config values, which must survive a YAML round trip).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace lathe {

// Length of the longest prefix of `bytes` that ends on a character boundary, treating
// invalid bytes as one-byte characters (they become U+FFFD in sanitize_utf8). Only a trailing,
// still-completable multi-byte sequence is left out.
std::size_t utf8_complete_prefix(std::string_view bytes);

// `bytes` with every invalid byte (and every truncated sequence, byte by byte) replaced by
// U+FFFD; valid UTF-8 comes back unchanged.
std::string sanitize_utf8(std::string_view bytes);

// Whether `bytes` is entirely valid UTF-8 (no invalid or truncated sequence).
bool is_valid_utf8(std::string_view bytes);

}  // namespace lathe
