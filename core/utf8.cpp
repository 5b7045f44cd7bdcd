// UTF-8 boundary scanning and U+FFFD replacement (see utf8.h). Strict decoding as in the
// Unicode standard: no overlong forms, no surrogates, nothing above U+10FFFF.
#include "core/utf8.h"

namespace lathe {
namespace {

// Expected length of a sequence starting with `lead`, or 0 if `lead` cannot start one.
int sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Whether the k-th byte (k >= 1) of a sequence led by `lead` may be `b`. The second byte's
// range depends on the lead byte (this is what excludes overlongs and surrogates).
bool valid_continuation(unsigned char lead, int k, unsigned char b) {
  if (k == 1) {
    if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF;
    if (lead == 0xED) return b >= 0x80 && b <= 0x9F;
    if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
    if (lead == 0xF4) return b >= 0x80 && b <= 0x8F;
  }
  return b >= 0x80 && b <= 0xBF;
}

enum class Scan { Valid, Invalid, Incomplete };

// Classifies the sequence at bytes[i]; on Valid, *length is its byte count.
Scan scan_at(std::string_view bytes, std::size_t i, int* length) {
  const auto lead = static_cast<unsigned char>(bytes[i]);
  const int n = sequence_length(lead);
  if (n == 0) return Scan::Invalid;
  for (int k = 1; k < n; ++k) {
    if (i + k >= bytes.size()) return Scan::Incomplete;
    if (!valid_continuation(lead, k, static_cast<unsigned char>(bytes[i + k]))) return Scan::Invalid;
  }
  *length = n;
  return Scan::Valid;
}

}  // namespace

std::size_t utf8_complete_prefix(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    int n = 1;
    const Scan s = scan_at(bytes, i, &n);
    if (s == Scan::Incomplete) break;
    i += (s == Scan::Valid) ? n : 1;
  }
  return i;
}

bool is_valid_utf8(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    int n = 1;
    if (scan_at(bytes, i, &n) != Scan::Valid) return false;
    i += n;
  }
  return true;
}

std::string sanitize_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    int n = 1;
    if (scan_at(bytes, i, &n) == Scan::Valid) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += 1;
    }
  }
  return out;
}

}  // namespace lathe
