// The split step of byte-level BPE pre-tokenization: the GPT-2, Llama-3 and Qwen2 regexes,
// implemented as hand-written matchers over Unicode character classes (C++ has no regex
// engine with \p{L}/\p{N} here). Each matcher follows the regex's alternation order and
// backtracking exactly, including the case-insensitive contractions of Llama-3/Qwen2 and the
// \s+(?!\S) lookahead. Only these three patterns are recognised: any other regex in a
// tokenizer.json is rejected by the loader rather than approximated.
#pragma once
#include <optional>
#include <string_view>
#include <vector>

namespace lathe {

enum class SplitPattern { gpt2, llama3, qwen2 };

// The regex source as it appears in tokenizer.json (and in the original Python tokenizers).
std::string_view split_pattern_regex(SplitPattern pattern);
// The pattern whose regex source equals `regex` exactly, or nullopt.
std::optional<SplitPattern> split_pattern_from_regex(std::string_view regex);

// Appends to `pieces` the consecutive pieces of `text` (views into it; their concatenation
// is `text`). Invalid UTF-8 bytes count as "other" characters of one byte each.
void pretokenize(std::string_view text, SplitPattern pattern, std::vector<std::string_view>& pieces);

}  // namespace lathe
