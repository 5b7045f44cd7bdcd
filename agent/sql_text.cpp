// SQL tokenizer for the guard's lexical checks (see sql_text.h).
#include "agent/sql_text.h"

#include <cctype>

namespace lathe::agent {

namespace {

bool word_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

// End (exclusive) of a PostgreSQL dollar-quoted string starting at `i` ("$tag$…$tag$"),
// or npos when `i` does not open one.
size_t dollar_quote_end(const std::string& s, size_t i) {
  size_t j = i + 1;
  while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
  if (j >= s.size() || s[j] != '$') return std::string::npos;
  if (j > i + 1 && std::isdigit(static_cast<unsigned char>(s[i + 1]))) return std::string::npos;  // $1 is a parameter
  const std::string tag = s.substr(i, j - i + 1);
  const size_t close = s.find(tag, j + 1);
  return close == std::string::npos ? s.size() : close + tag.size();
}

}  // namespace

std::vector<SqlToken> sql_tokens(const std::string& sql) {
  std::vector<SqlToken> out;
  size_t i = 0;
  const size_t n = sql.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(sql[i]);
    if (std::isspace(c)) {
      ++i;
    } else if (sql.compare(i, 2, "--") == 0) {
      const size_t e = sql.find('\n', i);
      i = e == std::string::npos ? n : e + 1;
    } else if (sql.compare(i, 2, "/*") == 0) {
      // Ends at the first "*/" as in SQLite. PostgreSQL nests block comments, so there a
      // comment only ends later: the guard never sees less SQL than either database runs.
      const size_t e = sql.find("*/", i + 2);
      i = e == std::string::npos ? n : e + 2;
    } else if (c == '\'' || c == '"' || c == '`' || c == '[') {
      const char close = c == '[' ? ']' : static_cast<char>(c);
      // PostgreSQL's E'…' strings take backslash escapes (E'\'' is one quote).
      const bool escapes = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') && !out.empty() &&
                           out.back().kind == SqlToken::Word && out.back().text == "E";
      size_t j = i + 1;
      while (j < n) {
        if (escapes && sql[j] == '\\') {
          j += 2;
          continue;
        }
        if (sql[j] == close) {
          if (close != ']' && j + 1 < n && sql[j + 1] == close) {
            j += 2;  // doubled quote inside the literal
            continue;
          }
          break;
        }
        ++j;
      }
      const size_t end = j < n ? j + 1 : n;
      out.push_back({SqlToken::Quoted, sql.substr(i, end - i)});
      i = end;
    } else if (c == '$' && dollar_quote_end(sql, i) != std::string::npos) {
      const size_t end = dollar_quote_end(sql, i);
      out.push_back({SqlToken::Quoted, sql.substr(i, end - i)});
      i = end;
    } else if (std::isdigit(c)) {
      size_t j = i;
      while (j < n && (std::isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '.')) ++j;
      out.push_back({SqlToken::Number, sql.substr(i, j - i)});
      i = j;
    } else if (word_char(c)) {
      size_t j = i;
      while (j < n && (word_char(static_cast<unsigned char>(sql[j])) || sql[j] == '$')) ++j;
      std::string w = sql.substr(i, j - i);
      for (char& ch : w) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      out.push_back({SqlToken::Word, w});
      i = j;
    } else {
      out.push_back({SqlToken::Symbol, std::string(1, static_cast<char>(c))});
      ++i;
    }
  }
  return out;
}

std::string leading_keyword(const std::string& sql) {
  for (const auto& t : sql_tokens(sql)) {
    if (t.kind == SqlToken::Word) return t.text;
    if (t.text != "(") return "";
  }
  return "";
}

std::vector<std::string> called_functions(const std::string& sql) {
  const auto tokens = sql_tokens(sql);
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    if (tokens[i + 1].text != "(") continue;
    if (tokens[i].kind == SqlToken::Word) {
      out.push_back(tokens[i].text);
    } else if (tokens[i].kind == SqlToken::Quoted && tokens[i].text.size() >= 2 &&
               (tokens[i].text[0] == '"' || tokens[i].text[0] == '`' || tokens[i].text[0] == '[')) {
      // "load_extension"(…) calls the function too.
      std::string w = tokens[i].text.substr(1, tokens[i].text.size() - 2);
      for (char& ch : w) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      out.push_back(w);
    }
  }
  return out;
}

bool has_second_statement(const std::string& sql) {
  bool after_semicolon = false;
  for (const auto& t : sql_tokens(sql)) {
    if (t.text == ";") {
      after_semicolon = true;
    } else if (after_semicolon) {
      return true;
    }
  }
  return false;
}

std::string lexical_refusal(const std::string& sql, const std::set<std::string>& denied_functions) {
  static const std::set<std::string> writing_words = {
      "INSERT", "UPDATE",   "DELETE", "DROP",   "ALTER",  "CREATE", "ATTACH", "DETACH",
      "PRAGMA", "VACUUM",   "REINDEX", "ANALYZE", "TRUNCATE", "GRANT", "REVOKE", "MERGE",
      "INTO",   "BEGIN",    "COMMIT", "ROLLBACK", "SAVEPOINT"};
  const std::string keyword = leading_keyword(sql);
  if (keyword.empty()) return "empty statement";
  if (keyword != "SELECT" && keyword != "WITH") {
    return "only SELECT or WITH … SELECT queries are allowed (this one starts with " + keyword + ")";
  }
  if (has_second_statement(sql)) return "more than one statement (only one SELECT may run)";
  for (const auto& token : sql_tokens(sql)) {
    if (token.kind == SqlToken::Word && writing_words.count(token.text)) {
      return "the query uses " + token.text + ", which only statements that write or change the schema use";
    }
  }
  for (const auto& name : called_functions(sql)) {
    if (denied_functions.count(name)) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return "function " + lower + "() is not allowed";
    }
  }
  return "";
}

}  // namespace lathe::agent
