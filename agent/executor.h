// The executor interface the agent runs model-written SQL through, and the guard every
// backend applies before anything runs: exactly one statement, SELECT or WITH … SELECT only,
// nothing that writes, attaches, changes settings or reaches outside the database; a row cap
// (larger results are truncated and say so) and a time limit (a runaway query is stopped).
// Backends: SQLite (sqlite_executor.h, the default) and PostgreSQL (postgres_executor.h).
// Expected failures (refusal, SQL error, limit) are outcomes, not exceptions: the agent
// feeds them back to the model. Exceptions are for a database that cannot be opened.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "data/format.h"
#include "data/sql_exec.h"

namespace lathe::agent {

struct ExecutorLimits {
  int64_t max_rows = 200;        // rows read at most; more → SqlResult::truncated
  double timeout_seconds = 5.0;  // a statement running longer is stopped
};

enum class QueryStatus {
  Ok,       // ran; rows in result
  Refused,  // the guard refused it; nothing ran
  Error,    // the database rejected or failed it (syntax, unknown column, …)
  Stopped,  // ran past the time limit and was stopped
};
const char* query_status_name(QueryStatus status);  // "ok" | "refused" | "error" | "stopped"

struct QueryOutcome {
  QueryStatus status = QueryStatus::Ok;
  std::string message;      // why it was refused / failed / stopped; "" when ok
  data::SqlResult result;   // columns and rows (ok only); result.truncated at the row cap
  double guard_ms = 0;      // checks and preparation
  double execute_ms = 0;    // running and reading rows
  bool ok() const { return status == QueryStatus::Ok; }
};

class SqlExecutor {
 public:
  virtual ~SqlExecutor() = default;
  // Guards, then runs one statement within the limits.
  virtual QueryOutcome run(const std::string& sql) = 0;
  // "SQLite" | "PostgreSQL": the dialect the model is asked to write.
  virtual std::string dialect() const = 0;
  // CREATE TABLE statements of the user tables.
  virtual std::string schema_text() = 0;
  // The `per_column` most frequent values of every text column (ties by value), read from
  // at most the first 10000 rows of each table.
  virtual std::vector<data::ColumnSamples> text_column_samples(int per_column) = 0;
  virtual const ExecutorLimits& limits() const = 0;
};

// "postgresql://…", "postgres://…" or a libpq "key=value …" string (not an existing file)
// opens PostgreSQL; anything else is a SQLite file, which must exist.
bool is_postgres_target(const std::string& database);
std::unique_ptr<SqlExecutor> open_executor(const std::string& database, const ExecutorLimits& limits);

// The live schema the agent shows the model: DDL plus a few stored values per text column.
std::string live_schema(SqlExecutor& executor, int samples_per_column);

// Pieces the backends share.
// `text` between `quote` characters, doubling any inside: '…' literals, "…" identifiers.
std::string sql_quoted(const std::string& text, char quote);
// "ran past the time limit of 5 s"
std::string time_limit_message(double seconds);
double milliseconds_since(std::chrono::steady_clock::time_point start);
QueryOutcome refused(const std::string& why, double guard_ms);
// The most frequent `per_column` values of table.column among its first 10000 rows, through
// the executor's own guarded run(); throws naming `where` (the database) when that fails.
data::ColumnSamples sample_text_column(SqlExecutor& executor, const std::string& table, const std::string& column,
                                       int per_column, const std::string& where);

}  // namespace lathe::agent
