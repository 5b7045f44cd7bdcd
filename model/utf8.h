// Small UTF-8 helpers shared by the tokenizers' decoders and DecodeStream: find where the
// complete characters of a byte buffer end, and replace invalid bytes with U+FFFD.
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

}  // namespace lathe
