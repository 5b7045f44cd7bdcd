// Read-only SQL execution on SQLite with a row cap and a time limit, and the canonical form
// of a result set that gold labels, rewards and the agent's evaluation all compare with.
//
// Comparison rules (the ones Spider-style execution accuracy uses, made explicit):
//  - column names are ignored (aliases differ between equally correct queries);
//  - rows are compared as a multiset unless the gold query has a top-level ORDER BY;
//  - numbers are normalised: 3, 3.0 and '3' are equal; non-integers are rounded to
//    CanonicalOptions::significant_digits so float summation order does not matter.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

struct sqlite3;

namespace lathe::data {

// A query that failed to prepare or run, ran past its time limit, or tried to write.
class SqlError : public Error {
 public:
  using Error::Error;
};

struct SqlLimits {
  int64_t max_rows = 1000;        // rows beyond this are not read; SqlResult::truncated is set
  double timeout_seconds = 5.0;   // wall clock, checked by SQLite's progress handler
};

using SqlRow = std::vector<std::optional<std::string>>;  // nullopt = SQL NULL

struct SqlResult {
  std::vector<std::string> columns;
  std::vector<SqlRow> rows;
  bool truncated = false;
};

// A read-only connection (SQLITE_OPEN_READONLY); cheap to keep and reuse for many queries.
class SqlDatabase {
 public:
  explicit SqlDatabase(const std::string& path);
  ~SqlDatabase();
  SqlDatabase(const SqlDatabase&) = delete;
  SqlDatabase& operator=(const SqlDatabase&) = delete;

  // Runs exactly one statement. Throws SqlError on a syntax error, runtime error, timeout,
  // a second statement, or a statement that is not read-only.
  SqlResult query(const std::string& sql, const SqlLimits& limits = {}) const;

  // CREATE statements of the user tables, as written when they were created.
  std::string schema_text() const;
  // The distinct non-ASCII text values of every column of the user tables that holds at most
  // `max_distinct` of them (brands, cities, colours: the names questions and queries repeat),
  // sorted. Columns with more distinct values (ids, free text) are left out.
  std::vector<std::string> categorical_text_values(int max_distinct) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

// One-shot helper: open read-only, run, close.
SqlResult run_query_readonly(const std::string& db_path, const std::string& sql,
                             const SqlLimits& limits = {});

struct CanonicalOptions {
  int significant_digits = 8;
};

struct CanonicalResult {
  std::vector<std::string> columns;                         // informative only
  std::vector<std::vector<std::optional<std::string>>> rows;  // normalised cells
  bool ordered = false;  // rows keep query order (the query had ORDER BY); else sorted
};

// True when the statement has ORDER BY outside parentheses, strings and comments.
bool has_top_level_order_by(const std::string& sql);
// "3", "3.0", "3e0" -> "3"; "2.50" -> "2.5"; text that is not a number is returned unchanged.
std::string normalize_cell(const std::string& value, const CanonicalOptions& options = {});

CanonicalResult canonicalize(const SqlResult& result, bool ordered,
                             const CanonicalOptions& options = {});
// Whether `candidate` returns the same answer as `gold`; gold.ordered decides order
// sensitivity. Column counts must agree.
bool results_match(const CanonicalResult& gold, const CanonicalResult& candidate);

// {"columns": [...], "rows": [[...]], "ordered": bool}; NULL cells are JSON null.
nlohmann::json canonical_to_json(const CanonicalResult& result);
CanonicalResult canonical_from_json(const nlohmann::json& json);

}  // namespace lathe::data
