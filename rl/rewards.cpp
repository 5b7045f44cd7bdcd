// The reward registry and the built-in rewards. The XML checks are matched by hand rather
// than with std::regex: ECMAScript has no DOTALL flag, `$` differs from Python's, and
// backtracking regexes blow the stack on long completions.
#include "rl/rewards.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "core/error.h"
#include "core/subprocess.h"
#include "data/format.h"
#include "data/sql_exec.h"

namespace lathe::rl {

using nlohmann::json;

// ---- text helpers ------------------------------------------------------------------------

int64_t code_point_length(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text)
    if ((c & 0xC0) != 0x80) ++n;  // every byte except continuation bytes starts a character
  return n;
}

namespace {

// Python's str.count: non-overlapping occurrences, scanning left to right.
int64_t count_nonoverlapping(const std::string& text, const std::string& needle) {
  int64_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

// Python's text.split(sep)[-1]: what follows the last non-overlapping occurrence.
std::string last_split_piece(const std::string& text, const std::string& sep) {
  size_t start = 0;
  for (size_t at = text.find(sep); at != std::string::npos; at = text.find(sep, at + sep.size()))
    start = at + sep.size();
  return text.substr(start);
}

// Decodes the code point at text[i] (invalid bytes read as themselves) and its byte length.
std::pair<uint32_t, size_t> decode_at(const std::string& text, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = b(i);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (i + len > text.size()) return {c, 1};
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return {c, 1};
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  return {cp, len};
}

// Python's \s on str patterns (str.isspace()).
bool is_python_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// Whether `.` (or `.` with DOTALL) may span text[from, to).
bool dot_spans(const std::string& text, size_t from, size_t to, bool dotall) {
  return dotall || text.find('\n', from) >= to;
}

bool starts_with_at(const std::string& text, size_t at, const std::string& s) {
  return at <= text.size() && text.compare(at, s.size(), s) == 0 && at + s.size() <= text.size();
}

std::string strip_python(const std::string& text) {
  size_t begin = 0, end = text.size();
  while (begin < end) {
    auto [cp, len] = decode_at(text, begin);
    if (!is_python_space(cp)) break;
    begin += len;
  }
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    if (!is_python_space(decode_at(text, start).first)) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

}  // namespace

// ^<reasoning>\n(.*?)\n</reasoning>\n<answer>\n(.*?)\n</answer>\n$ under re.match. A match
// exists iff some occurrence of the middle separator and some admissible ending split the
// text into two pieces `.` may span. Python's `$` matches at the end or before a final "\n".
bool xml_strict_matches(const std::string& text, bool dotall) {
  static const std::string head = "<reasoning>\n", middle = "\n</reasoning>\n<answer>\n", tail = "\n</answer>\n";
  if (!starts_with_at(text, 0, head)) return false;
  std::vector<size_t> endings;  // where `tail` begins
  if (text.size() >= tail.size() && starts_with_at(text, text.size() - tail.size(), tail))
    endings.push_back(text.size() - tail.size());
  if (text.size() >= tail.size() + 1 && text.back() == '\n' &&
      starts_with_at(text, text.size() - tail.size() - 1, tail))
    endings.push_back(text.size() - tail.size() - 1);
  for (size_t m = text.find(middle, head.size()); m != std::string::npos; m = text.find(middle, m + 1)) {
    if (!dot_spans(text, head.size(), m, dotall)) break;  // later separators only span more
    const size_t answer_begin = m + middle.size();
    for (size_t e : endings)
      if (e >= answer_begin && dot_spans(text, answer_begin, e, dotall)) return true;
  }
  return false;
}

// re.match(r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>", text): anchored at the start,
// anything may follow the match.
bool xml_loose_matches(const std::string& text, bool dotall) {
  static const std::string open_r = "<reasoning>", close_r = "</reasoning>", open_a = "<answer>", close_a = "</answer>";
  if (!starts_with_at(text, 0, open_r)) return false;
  for (size_t c = text.find(close_r, open_r.size()); c != std::string::npos; c = text.find(close_r, c + 1)) {
    if (!dot_spans(text, open_r.size(), c, dotall)) break;
    // \s* then "<answer>": '<' is not a space, so only the whole run of spaces can work.
    size_t i = c + close_r.size();
    while (i < text.size()) {
      auto [cp, len] = decode_at(text, i);
      if (!is_python_space(cp)) break;
      i += len;
    }
    if (!starts_with_at(text, i, open_a)) continue;
    const size_t answer_begin = i + open_a.size();
    const size_t close = text.find(close_a, answer_begin);  // the nearest close is the best bet
    if (close != std::string::npos && dot_spans(text, answer_begin, close, dotall)) return true;
  }
  return false;
}

// The recipe's count_xml, operation for operation (so the doubles agree bit for bit).
double xml_count_score(const std::string& text) {
  double count = 0.0;
  if (count_nonoverlapping(text, "<reasoning>\n") == 1) count += 0.125;
  if (count_nonoverlapping(text, "\n</reasoning>\n") == 1) count += 0.125;
  if (count_nonoverlapping(text, "\n<answer>\n") == 1) {
    count += 0.125;
    count -= static_cast<double>(code_point_length(last_split_piece(text, "\n</answer>\n"))) * 0.001;
  }
  if (count_nonoverlapping(text, "\n</answer>") == 1) {
    count += 0.125;
    count -= static_cast<double>(code_point_length(last_split_piece(text, "\n</answer>")) - 1) * 0.001;
  }
  return count;
}

std::vector<std::string> sql_literals(const std::string& sql) {
  const auto ident_char = [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '$' || c >= 0x80; };
  std::vector<std::string> out;
  size_t i = 0;
  const size_t n = sql.size();
  // The end of a quoted run opened at i (quote q, doubled quote = one character); fills text.
  const auto quoted = [&](char q, std::string* text) {
    size_t k = i + 1;
    while (k < n) {
      if (sql[k] == q) {
        if (k + 1 < n && sql[k + 1] == q) {
          if (text) *text += q;
          k += 2;
          continue;
        }
        return k + 1;
      }
      if (text) *text += sql[k];
      ++k;
    }
    return n;  // unterminated: to the end
  };
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(sql[i]);
    if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      const size_t end = sql.find('\n', i);
      i = end == std::string::npos ? n : end + 1;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      const size_t end = sql.find("*/", i + 2);
      i = end == std::string::npos ? n : end + 2;
    } else if (c == '\'') {
      std::string text;
      i = quoted('\'', &text);
      out.push_back("'" + text);
    } else if (c == '"' || c == '`') {
      i = quoted(static_cast<char>(c), nullptr);  // a quoted identifier
    } else if (c == '[') {
      const size_t end = sql.find(']', i);
      i = end == std::string::npos ? n : end + 1;
    } else if (std::isdigit(c) || (c == '.' && i + 1 < n && std::isdigit(static_cast<unsigned char>(sql[i + 1])))) {
      size_t k = i;
      if (c == '0' && i + 1 < n && (sql[i + 1] == 'x' || sql[i + 1] == 'X')) {
        k += 2;
        while (k < n && std::isxdigit(static_cast<unsigned char>(sql[k]))) ++k;
        out.push_back("#" + std::to_string(std::strtoll(sql.substr(i, k - i).c_str(), nullptr, 16)));
      } else {
        while (k < n && (std::isdigit(static_cast<unsigned char>(sql[k])) || sql[k] == '.')) ++k;
        if (k < n && (sql[k] == 'e' || sql[k] == 'E')) {
          size_t e = k + 1;
          if (e < n && (sql[e] == '+' || sql[e] == '-')) ++e;
          if (e < n && std::isdigit(static_cast<unsigned char>(sql[e]))) {
            k = e;
            while (k < n && std::isdigit(static_cast<unsigned char>(sql[k]))) ++k;
          }
        }
        char buf[32];
        std::snprintf(buf, sizeof buf, "#%.15g", std::strtod(sql.substr(i, k - i).c_str(), nullptr));
        out.push_back(buf);
      }
      i = k;
    } else if (ident_char(c)) {
      while (i < n && ident_char(static_cast<unsigned char>(sql[i]))) ++i;  // keywords, names, x'..' prefixes
    } else {
      ++i;
    }
  }
  return out;
}

std::string extract_xml_answer(const std::string& text) {
  std::string answer = last_split_piece(text, "<answer>");
  const size_t close = answer.find("</answer>");
  if (close != std::string::npos) answer.resize(close);
  return strip_python(answer);
}

// ---- built-in rewards ----------------------------------------------------------------------

namespace {

class XmlFormatReward : public RewardFunction {
 public:
  XmlFormatReward(bool strict, bool dotall, double value) : strict_(strict), dotall_(dotall), value_(value) {}
  std::vector<double> score(const json&, const std::vector<std::string>& completions) override {
    std::vector<double> out;
    for (const auto& c : completions)
      out.push_back((strict_ ? xml_strict_matches(c, dotall_) : xml_loose_matches(c, dotall_)) ? value_ : 0.0);
    return out;
  }

 private:
  bool strict_, dotall_;
  double value_;
};

class XmlCountReward : public RewardFunction {
 public:
  std::vector<double> score(const json&, const std::vector<std::string>& completions) override {
    std::vector<double> out;
    for (const auto& c : completions) out.push_back(xml_count_score(c));
    return out;
  }
};

// |a ∩ b| of two multisets (result rows, query constants).
template <class T>
size_t multiset_common(std::vector<T> a, std::vector<T> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  size_t i = 0, j = 0, n = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) ++n, ++i, ++j;
    else if (a[i] < b[j]) ++i;
    else ++j;
  }
  return n;
}

class SqlExecutionReward : public RewardFunction {
 public:
  explicit SqlExecutionReward(const json& o)
      : db_(o.at("database").get<std::string>()),
        match_reward_(o.at("match_reward").get<double>()),
        row_f1_(o.at("partial_credit").get<std::string>() == "row_f1") {
    limits_.max_rows = o.at("max_rows").get<int64_t>();
    limits_.timeout_seconds = o.at("timeout_seconds").get<double>();
  }

  std::vector<double> score(const json& row, const std::vector<std::string>& completions) override {
    if (!row.contains("gold_result") || row["gold_result"].is_null())
      fail("sql_execution: the dataset row has no gold_result (use lathe data build's grpo_*.jsonl)");
    const data::CanonicalResult gold = data::canonical_from_json(row["gold_result"]);
    std::vector<double> out;
    for (const auto& completion : completions) out.push_back(score_one(gold, completion));
    return out;
  }

 private:
  double score_one(const data::CanonicalResult& gold, const std::string& completion) const {
    const auto sql = data::extract_answer_sql(completion);
    if (!sql) return 0.0;
    data::CanonicalResult got;
    try {
      const data::SqlResult result = db_.query(*sql, limits_);
      // A result cut at the row cap is not the gold answer, whatever its first rows say.
      if (result.truncated) return 0.0;
      got = data::canonicalize(result, gold.ordered);
    } catch (const data::SqlError&) {
      return 0.0;  // invalid, slow or writing SQL earns nothing
    }
    if (data::results_match(gold, got)) return match_reward_;
    if (!row_f1_ || got.columns.size() != gold.columns.size() || got.rows.empty() || gold.rows.empty()) return 0.0;
    const double common = static_cast<double>(multiset_common(gold.rows, got.rows));
    return match_reward_ * 2.0 * common / static_cast<double>(gold.rows.size() + got.rows.size());
  }

  data::SqlDatabase db_;
  double match_reward_;
  bool row_f1_;
  data::SqlLimits limits_;
};

// The row's string column `column`, or an error naming the reward and the column.
const std::string& string_column(const json& row, const std::string& column, const std::string& reward,
                                 const std::string& what = "") {
  if (!row.contains(column) || !row[column].is_string())
    fail(reward + ": the dataset row has no string column '" + column + "'" + what);
  return row[column].get_ref<const std::string&>();
}

// The literal F1 of sql_literals: with q = predicted literals and g = gold literals (multisets),
// 2|q ∩ g| / (|q| + |g|); two queries without literals agree fully.
double literal_f1(const std::vector<std::string>& predicted, const std::vector<std::string>& gold) {
  if (predicted.empty() && gold.empty()) return 1.0;
  return 2.0 * static_cast<double>(multiset_common(predicted, gold)) / static_cast<double>(predicted.size() + gold.size());
}

// Credit for the constants of a query, not its result: most wrong answers of a small SFT model
// have the gold query's shape with a wrong value in it (a brand or date it did not copy from the
// question), which sql_execution scores 0 like any other failure. This reward tells a
// completion with two of three gold values from one with none.
class SqlLiteralsReward : public RewardFunction {
 public:
  explicit SqlLiteralsReward(const json& o) : column_(o.at("column").get<std::string>()), value_(o.at("value").get<double>()) {}
  std::vector<double> score(const json& row, const std::vector<std::string>& completions) override {
    const std::vector<std::string> gold = sql_literals(string_column(row, column_, "sql_literals", " (the gold SQL)"));
    std::vector<double> out;
    for (const auto& completion : completions) {
      const auto sql = data::extract_answer_sql(completion);
      out.push_back(sql ? value_ * literal_f1(sql_literals(*sql), gold) : 0.0);
    }
    return out;
  }

 private:
  std::string column_;
  double value_;
};

std::string normalize_answer(const std::string& text) {
  std::string out;
  bool space = false;
  for (unsigned char c : strip_python(text)) {
    if (std::isspace(c)) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(c));
  }
  return out;
}

class AnswerMatchReward : public RewardFunction {
 public:
  explicit AnswerMatchReward(const json& o) : column_(o.at("column").get<std::string>()), value_(o.at("value").get<double>()) {}
  std::vector<double> score(const json& row, const std::vector<std::string>& completions) override {
    const std::string gold = normalize_answer(string_column(row, column_, "answer_match"));
    std::vector<double> out;
    for (const auto& c : completions) out.push_back(normalize_answer(extract_xml_answer(c)) == gold ? value_ : 0.0);
    return out;
  }

 private:
  std::string column_;
  double value_;
};

class AnswerContainsReward : public RewardFunction {
 public:
  explicit AnswerContainsReward(const json& o) : column_(o.at("column").get<std::string>()) {}
  std::vector<double> score(const json& row, const std::vector<std::string>& completions) override {
    if (!row.contains(column_) || !row[column_].is_array() || row[column_].empty())
      fail("answer_contains: the dataset row has no non-empty list column '" + column_ + "'");
    std::vector<std::string> terms;
    for (size_t i = 0; i < row[column_].size(); ++i) {
      const json& term = row[column_][i];
      if (!term.is_string())
        fail("answer_contains: the dataset row's '" + column_ + "' must be a list of strings; item " +
             std::to_string(i) + " is " + term.type_name());
      terms.push_back(normalize_answer(term.get<std::string>()));
    }
    std::vector<double> out;
    for (const auto& c : completions) {
      const std::string answer = normalize_answer(extract_xml_answer(c));
      size_t found = 0;
      for (const auto& t : terms) found += answer.find(t) != std::string::npos;
      out.push_back(static_cast<double>(found) / static_cast<double>(terms.size()));
    }
    return out;
  }

 private:
  std::string column_;
};

// An external program scores completions over JSON lines: one request per group,
//   {"row": {...the dataset row...}, "completions": ["...", ...]}
// answered by one line {"scores": [number, ...]} (same length), or {"error": "message"}.
// The program starts with the first group and lives for the run. A crash, a timeout or a
// malformed answer is an error that fails the step: a broken reward never scores zero.
class CommandReward : public RewardFunction {
 public:
  explicit CommandReward(const json& o)
      : program_(o.at("program").get<std::string>()),
        timeout_(static_cast<int64_t>(o.at("timeout_seconds").get<double>() * 1000.0)) {}

  std::vector<double> score(const json& row, const std::vector<std::string>& completions) override {
    if (!process_ || !process_->running())
      process_ = std::make_unique<Subprocess>(std::vector<std::string>{"/bin/sh", "-c", "exec " + program_},
                                              "reward program '" + program_ + "'");
    const std::string request = json{{"row", row}, {"completions", completions}}.dump(-1, ' ', false,
                                                                                    json::error_handler_t::replace);
    process_->write_all(request + "\n", timeout_);
    const std::string line = process_->read_line(timeout_);
    json answer;
    try {
      answer = json::parse(line);
    } catch (const json::exception&) {
      fail(process_->what() + " answered a line that is not JSON: " + line.substr(0, 200));
    }
    if (answer.is_object() && answer.contains("error"))
      fail(process_->what() + " reported an error: " + answer["error"].dump());
    if (!answer.is_object() || !answer.contains("scores") || !answer["scores"].is_array())
      fail(process_->what() + " answered without a \"scores\" list: " + line.substr(0, 200));
    const json& scores = answer["scores"];
    if (scores.size() != completions.size())
      fail(process_->what() + " returned " + std::to_string(scores.size()) + " scores for " +
           std::to_string(completions.size()) + " completions");
    std::vector<double> out;
    for (size_t i = 0; i < scores.size(); ++i) {
      if (!scores[i].is_number() || !std::isfinite(scores[i].get<double>()))
        fail(process_->what() + ": score " + std::to_string(i) + " is not a finite number: " + scores[i].dump());
      out.push_back(scores[i].get<double>());
    }
    return out;
  }

 private:
  std::string program_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Subprocess> process_;
};

std::map<std::string, RewardEntry>& registry() {
  static std::map<std::string, RewardEntry> entries = [] {
    std::map<std::string, RewardEntry> e;
    const RewardOption dotall{"dotall", true, "`.` crosses newlines (false: the GSM8K recipe's exact regex)", {}};
    e["xml_strict"] = {"xml_strict", "0.5 when the whole completion is <reasoning>\\n…\\n</reasoning>\\n<answer>\\n…\\n</answer>\\n",
                       {dotall}, [](const json& o) {
                         return std::make_unique<XmlFormatReward>(true, o.at("dotall").get<bool>(), 0.5);
                       }};
    e["xml_loose"] = {"xml_loose", "0.5 when the completion starts with <reasoning>…</reasoning> <answer>…</answer>",
                      {dotall}, [](const json& o) {
                        return std::make_unique<XmlFormatReward>(false, o.at("dotall").get<bool>(), 0.5);
                      }};
    e["xml_count"] = {"xml_count", "0.125 per well-placed tag, minus 0.001 per character after </answer> (max 0.5)",
                      {}, [](const json&) { return std::make_unique<XmlCountReward>(); }};
    e["sql_execution"] = {
        "sql_execution", "match_reward when the <answer> SQL returns the gold result set, else 0 (or partial credit)",
        {{"database", "", "SQLite file the SQL runs on, read-only (lathe data build's inventory.sqlite)", {}},
         {"match_reward", 2.0, "reward for a result set equal to the gold one", {}},
         {"partial_credit", "none", "none | row_f1: match_reward × F1 of the row multisets when not equal", {"none", "row_f1"}},
         {"timeout_seconds", 2.0, "time limit per query", {}},
         {"max_rows", 1000, "rows read per query; a result past the cap scores 0", {}}},
        [](const json& o) {
          if (o.at("database").get<std::string>().empty())
            fail("sql_execution: set rewards.sql_execution.database to the SQLite file the SQL runs on");
          return std::make_unique<SqlExecutionReward>(o);
        }};
    e["sql_literals"] = {"sql_literals", "value × F1 of the constants (strings, numbers) of the <answer> SQL against the gold SQL's",
                         {{"column", "gold_sql", "dataset column holding the gold SQL", {}},
                          {"value", 1.0, "reward for exactly the gold query's constants", {}}},
                         [](const json& o) { return std::make_unique<SqlLiteralsReward>(o); }};
    e["answer_match"] = {"answer_match", "value when the <answer> text equals the row's gold answer (trimmed, lowercased, spaces collapsed)",
                         {{"column", "answer", "dataset column holding the gold answer", {}},
                          {"value", 1.0, "reward for a match", {}}},
                         [](const json& o) { return std::make_unique<AnswerMatchReward>(o); }};
    e["command"] = {"command", "scores from an external program speaking JSON lines on stdin/stdout",
                    {{"program", "", "shell command line of the reward program (started once per run)", {}},
                     {"timeout_seconds", 30.0, "time limit for each group's answer", {}}},
                    [](const json& o) {
                      if (o.at("program").get<std::string>().empty())
                        fail("command: set rewards.command.program to the reward program's command line");
                      if (o.at("timeout_seconds").get<double>() <= 0)
                        fail("command: rewards.command.timeout_seconds must be > 0");
                      return std::make_unique<CommandReward>(o);
                    }};
    e["answer_contains"] = {"answer_contains", "fraction of the row's required terms found in the <answer> text",
                            {{"column", "required_terms", "dataset column holding the list of terms", {}}},
                            [](const json& o) { return std::make_unique<AnswerContainsReward>(o); }};
    return e;
  }();
  return entries;
}

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

void register_reward(RewardEntry entry) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto& r = registry();
  if (r.count(entry.name)) fail("reward '" + entry.name + "' is already registered");
  const std::string name = entry.name;
  r.emplace(name, std::move(entry));
}

std::vector<std::string> reward_names() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<std::string> names;
  for (const auto& [name, entry] : registry()) names.push_back(name);
  return names;
}

const RewardEntry& find_reward(const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = registry().find(name);
    if (it != registry().end()) return it->second;
  }
  std::string valid;
  for (const auto& n : reward_names()) valid += (valid.empty() ? "" : ", ") + n;
  fail("unknown reward '" + name + "'; valid rewards: " + valid);
}

std::unique_ptr<RewardFunction> make_reward(const std::string& name, const json& options) {
  const RewardEntry& entry = find_reward(name);
  json resolved = json::object();
  for (const auto& opt : entry.options) resolved[opt.key] = opt.default_value;
  for (const auto& item : options.items()) {
    const std::string& key = item.key();  // not a binding: the lambda captures it (C++17, clang)
    const json& value = item.value();
    auto it = std::find_if(entry.options.begin(), entry.options.end(), [&](const RewardOption& o) { return o.key == key; });
    if (it == entry.options.end()) fail("reward '" + name + "' has no option '" + key + "'");
    resolved[key] = value;
  }
  return entry.create(resolved);
}

GroupScores score_group(std::vector<WeightedReward>& rewards, const json& row,
                        const std::vector<std::string>& completions) {
  GroupScores scores;
  scores.total.assign(completions.size(), 0.0);
  for (auto& r : rewards) {
    std::vector<double> values = r.fn->score(row, completions);
    if (values.size() != completions.size())
      fail("reward '" + r.name + "' returned " + std::to_string(values.size()) + " scores for " +
           std::to_string(completions.size()) + " completions");
    for (size_t i = 0; i < values.size(); ++i) scores.total[i] += r.weight * values[i];
    scores.per_reward.push_back(std::move(values));
  }
  return scores;
}

}  // namespace lathe::rl
