// Read-only SQLite execution and canonical result sets (see sql_exec.h for the rules).
#include "data/sql_exec.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace lathe::data {

namespace {

struct Deadline {
  std::chrono::steady_clock::time_point at;
  bool expired = false;
};

int progress_check(void* arg) {
  auto* deadline = static_cast<Deadline*>(arg);
  if (std::chrono::steady_clock::now() >= deadline->at) {
    deadline->expired = true;
    return 1;  // non-zero interrupts the statement with SQLITE_INTERRUPT
  }
  return 0;
}

struct Statement {
  sqlite3_stmt* stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
};

bool only_trailing_noise(const char* tail) {
  // After the one statement only whitespace, semicolons and comments may follow.
  std::string rest = tail ? tail : "";
  size_t i = 0;
  while (i < rest.size()) {
    if (std::isspace(static_cast<unsigned char>(rest[i])) || rest[i] == ';') {
      ++i;
    } else if (rest.compare(i, 2, "--") == 0) {
      i = rest.find('\n', i);
      if (i == std::string::npos) return true;
    } else if (rest.compare(i, 2, "/*") == 0) {
      i = rest.find("*/", i);
      if (i == std::string::npos) return true;
      i += 2;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

SqlDatabase::SqlDatabase(const std::string& path) : path_(path) {
  const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw SqlError("cannot open database " + path + " read-only: " + why);
  }
}

SqlDatabase::~SqlDatabase() { sqlite3_close(db_); }

SqlResult SqlDatabase::query(const std::string& sql, const SqlLimits& limits) const {
  Statement st;
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &st.stmt, &tail) !=
      SQLITE_OK) {
    throw SqlError(std::string("SQL error: ") + sqlite3_errmsg(db_));
  }
  if (!st.stmt) throw SqlError("SQL error: empty statement");
  if (!only_trailing_noise(tail)) throw SqlError("SQL error: more than one statement");
  if (!sqlite3_stmt_readonly(st.stmt)) throw SqlError("SQL error: statement is not read-only");

  SqlResult result;
  const int ncol = sqlite3_column_count(st.stmt);
  for (int c = 0; c < ncol; ++c) {
    const char* name = sqlite3_column_name(st.stmt, c);
    result.columns.push_back(name ? name : "");
  }

  Deadline deadline{std::chrono::steady_clock::now() +
                    std::chrono::microseconds(static_cast<int64_t>(limits.timeout_seconds * 1e6))};
  sqlite3_progress_handler(db_, 1000, progress_check, &deadline);
  int rc;
  while ((rc = sqlite3_step(st.stmt)) == SQLITE_ROW) {
    if (static_cast<int64_t>(result.rows.size()) >= limits.max_rows) {
      result.truncated = true;
      break;
    }
    SqlRow row;
    row.reserve(ncol);
    for (int c = 0; c < ncol; ++c) {
      switch (sqlite3_column_type(st.stmt, c)) {
        case SQLITE_NULL:
          row.emplace_back(std::nullopt);
          break;
        case SQLITE_FLOAT: {
          // %.17g round-trips a double exactly; canonicalisation rounds later.
          char buf[40];
          std::snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(st.stmt, c));
          row.emplace_back(std::string(buf));
          break;
        }
        default: {
          const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st.stmt, c));
          row.emplace_back(std::string(text ? text : "", sqlite3_column_bytes(st.stmt, c)));
        }
      }
    }
    result.rows.push_back(std::move(row));
  }
  sqlite3_progress_handler(db_, 0, nullptr, nullptr);
  if (deadline.expired) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", limits.timeout_seconds);
    throw SqlError(std::string("SQL error: query ran past the time limit of ") + buf + " s");
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    throw SqlError(std::string("SQL error: ") + sqlite3_errmsg(db_));
  }
  return result;
}

std::string SqlDatabase::schema_text() const {
  const SqlResult r = query(
      "SELECT sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
      "AND sql IS NOT NULL ORDER BY rowid");
  std::string out;
  for (const auto& row : r.rows) {
    if (!out.empty()) out += "\n";
    out += *row[0] + ";\n";
  }
  return out;
}

std::vector<std::string> SqlDatabase::categorical_text_values(int max_distinct) const {
  const auto quote = [](const std::string& text, char mark) {
    std::string out(1, mark);
    for (char ch : text) out += ch == mark ? std::string(2, mark) : std::string(1, ch);
    return out + mark;
  };
  const auto non_ascii = [](const std::string& text) {
    return std::any_of(text.begin(), text.end(), [](char ch) { return static_cast<unsigned char>(ch) >= 0x80; });
  };
  std::vector<std::string> values;
  const SqlResult tables =
      query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
  for (const auto& table : tables.rows) {
    const SqlResult columns = query("SELECT name FROM pragma_table_info(" + quote(*table[0], '\'') + ")");
    for (const auto& column : columns.rows) {
      SqlLimits limits;
      limits.max_rows = max_distinct;
      // One row past the bound tells a categorical column from one with many values.
      const SqlResult distinct = query("SELECT DISTINCT " + quote(*column[0], '"') + " FROM " + quote(*table[0], '"') +
                                           " WHERE typeof(" + quote(*column[0], '"') + ") = 'text' LIMIT " +
                                           std::to_string(max_distinct + 1),
                                       limits);
      if (distinct.truncated) continue;
      for (const auto& row : distinct.rows)
        if (row[0] && non_ascii(*row[0])) values.push_back(*row[0]);
    }
  }
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

SqlResult run_query_readonly(const std::string& db_path, const std::string& sql,
                             const SqlLimits& limits) {
  SqlDatabase db(db_path);
  return db.query(sql, limits);
}

bool has_top_level_order_by(const std::string& sql) {
  std::string flat;  // upper-cased text at depth 0, strings and comments blanked
  int depth = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'' || c == '"' || c == '`') {
      const size_t end = sql.find(c, i + 1);
      i = end == std::string::npos ? sql.size() : end;
      flat += ' ';
    } else if (sql.compare(i, 2, "--") == 0) {
      const size_t end = sql.find('\n', i);
      i = end == std::string::npos ? sql.size() : end;
      flat += ' ';
    } else if (sql.compare(i, 2, "/*") == 0) {
      const size_t end = sql.find("*/", i + 2);
      i = end == std::string::npos ? sql.size() : end + 1;
      flat += ' ';
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (depth == 0) {
      flat += std::isspace(static_cast<unsigned char>(c)) ? ' ' : static_cast<char>(std::toupper(c));
    }
  }
  for (size_t pos = flat.find("ORDER"); pos != std::string::npos; pos = flat.find("ORDER", pos + 1)) {
    const bool word_start = pos == 0 || !(std::isalnum(static_cast<unsigned char>(flat[pos - 1])) || flat[pos - 1] == '_');
    size_t j = pos + 5;
    if (!word_start || j >= flat.size() || flat[j] != ' ') continue;
    while (j < flat.size() && flat[j] == ' ') ++j;
    if (flat.compare(j, 2, "BY") == 0) return true;
  }
  return false;
}

std::string normalize_cell(const std::string& value, const CanonicalOptions& options) {
  if (value.empty()) return value;
  const char* begin = value.c_str();
  char* end = nullptr;
  const double x = std::strtod(begin, &end);
  // Only a whole-string number counts; "12abc", "nan" and "inf" stay text.
  if (end != begin + value.size() || std::isspace(static_cast<unsigned char>(value[0])) ||
      !std::isfinite(x)) {
    return value;
  }
  // strtod also reads hex ("0x1A"); SQLite never prints numbers that way, so it stays text.
  if (std::isalpha(static_cast<unsigned char>(value[0])) || value.find_first_of("xX") != std::string::npos) {
    return value;
  }
  if (x == std::floor(x) && std::fabs(x) < 9.0e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(x));
    return buf;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", options.significant_digits, x);
  std::string s = buf;
  // Rounding may have produced an integer ("2.9999999999" -> "3").
  char* e2 = nullptr;
  const double r = std::strtod(s.c_str(), &e2);
  if (r == std::floor(r) && std::fabs(r) < 9.0e15) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(r));
    return buf;
  }
  return s;
}

CanonicalResult canonicalize(const SqlResult& result, bool ordered, const CanonicalOptions& options) {
  CanonicalResult out;
  out.columns = result.columns;
  out.ordered = ordered;
  out.rows.reserve(result.rows.size());
  for (const auto& row : result.rows) {
    std::vector<std::optional<std::string>> cells;
    cells.reserve(row.size());
    for (const auto& cell : row) {
      cells.push_back(cell ? std::optional<std::string>(normalize_cell(*cell, options)) : std::nullopt);
    }
    out.rows.push_back(std::move(cells));
  }
  if (!ordered) std::sort(out.rows.begin(), out.rows.end());
  return out;
}

bool results_match(const CanonicalResult& gold, const CanonicalResult& candidate) {
  if (gold.rows.size() != candidate.rows.size()) return false;
  if (!gold.rows.empty() && gold.rows[0].size() != candidate.rows[0].size()) return false;
  if (gold.ordered) return gold.rows == candidate.rows;
  auto a = gold.rows;
  auto b = candidate.rows;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

nlohmann::json canonical_to_json(const CanonicalResult& result) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : result.rows) {
    nlohmann::json cells = nlohmann::json::array();
    for (const auto& cell : row) cells.push_back(cell ? nlohmann::json(*cell) : nlohmann::json());
    rows.push_back(std::move(cells));
  }
  return {{"columns", result.columns}, {"rows", std::move(rows)}, {"ordered", result.ordered}};
}

CanonicalResult canonical_from_json(const nlohmann::json& json) {
  CanonicalResult out;
  try {
    out.columns = json.at("columns").get<std::vector<std::string>>();
    out.ordered = json.at("ordered").get<bool>();
    for (const auto& row : json.at("rows")) {
      std::vector<std::optional<std::string>> cells;
      for (const auto& cell : row) {
        cells.push_back(cell.is_null() ? std::nullopt : std::optional<std::string>(cell.get<std::string>()));
      }
      out.rows.push_back(std::move(cells));
    }
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("gold_result is not a canonical result object: ") + e.what());
  }
  return out;
}

}  // namespace lathe::data
