// Line-numbered readers for the user files the data stages import (CSV with a header row,
// JSONL), plus the UTF-8 helpers the question normaliser and stats need. Every error names
// "FILE:LINE: reason" so a user can fix the row.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lathe::data {

struct CsvRecord {
  int line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

// RFC 4180 CSV: quoted fields may hold commas, doubled quotes and newlines; CRLF and a UTF-8
// BOM are accepted. Blank lines are skipped. Throws lathe::Error "PATH:LINE: unterminated
// quoted field" when a quote never closes.
std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& path);

struct TextLine {
  int line = 0;
  std::string text;
};
// Non-blank lines of a JSONL file with their 1-based numbers.
std::vector<TextLine> read_jsonl_lines(const std::string& path);

// UTF-8 decoding; invalid bytes decode to U+FFFD one byte at a time.
std::vector<uint32_t> utf8_decode(const std::string& text);
std::string utf8_encode(const std::vector<uint32_t>& code_points);
size_t utf8_length(const std::string& text);
bool contains_cjk(const std::string& text);

}  // namespace lathe::data
