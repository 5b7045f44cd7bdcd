// Executor selection by target and the live schema for the prompt.
#include "agent/executor.h"

#include <cstdio>
#include <filesystem>

#include "agent/postgres_executor.h"
#include "agent/sqlite_executor.h"
#include "core/error.h"

namespace lathe::agent {

const char* query_status_name(QueryStatus status) {
  switch (status) {
    case QueryStatus::Ok: return "ok";
    case QueryStatus::Refused: return "refused";
    case QueryStatus::Error: return "error";
    case QueryStatus::Stopped: return "stopped";
  }
  return "?";
}

bool is_postgres_target(const std::string& database) {
  if (database.rfind("postgresql://", 0) == 0 || database.rfind("postgres://", 0) == 0) return true;
  // A libpq "host=… dbname=…" string; a file that happens to have '=' in its name stays SQLite.
  return database.find('=') != std::string::npos && !std::filesystem::exists(database);
}

std::unique_ptr<SqlExecutor> open_executor(const std::string& database, const ExecutorLimits& limits) {
  if (is_postgres_target(database)) return std::make_unique<PostgresExecutor>(database, limits);
  return std::make_unique<SqliteExecutor>(database, limits);
}

std::string live_schema(SqlExecutor& executor, int samples_per_column) {
  return data::schema_with_samples(executor.schema_text(), executor.text_column_samples(samples_per_column));
}

std::string sql_quoted(const std::string& text, char quote) {
  std::string out(1, quote);
  for (char c : text) {
    out += c;
    if (c == quote) out += quote;
  }
  return out + quote;
}

std::string time_limit_message(double seconds) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "ran past the time limit of %g s", seconds);
  return buf;
}

double milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

QueryOutcome refused(const std::string& why, double guard_ms) {
  QueryOutcome out;
  out.status = QueryStatus::Refused;
  out.message = why;
  out.guard_ms = guard_ms;
  return out;
}

data::ColumnSamples sample_text_column(SqlExecutor& executor, const std::string& table, const std::string& column,
                                       int per_column, const std::string& where) {
  const QueryOutcome values = executor.run("SELECT v FROM (SELECT " + sql_quoted(column, '"') + " AS v FROM " +
                                           sql_quoted(table, '"') + " LIMIT 10000) s WHERE v IS NOT NULL " +
                                           "GROUP BY v ORDER BY count(*) DESC, v LIMIT " + std::to_string(per_column));
  if (!values.ok()) fail("cannot sample " + table + "." + column + " in " + where + ": " + values.message);
  data::ColumnSamples samples{table, column, {}};
  for (const auto& row : values.result.rows) samples.values.push_back(row[0].value_or(""));
  return samples;
}

}  // namespace lathe::agent
