// Guarded, read-only SQLite execution for the agent (see sqlite_executor.h for the layers).
#include "agent/sqlite_executor.h"

#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include "agent/sql_text.h"
#include "core/error.h"

namespace lathe::agent {

namespace {

using Clock = std::chrono::steady_clock;

struct Deadline {
  Clock::time_point at;
  bool expired = false;
};

int check_deadline(void* arg) {
  auto* deadline = static_cast<Deadline*>(arg);
  if (Clock::now() < deadline->at) return 0;
  deadline->expired = true;
  return 1;  // interrupts the statement (SQLITE_INTERRUPT)
}

struct Statement {
  sqlite3_stmt* stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
};

// Only whitespace, semicolons and comments may follow the one statement.
bool only_noise(const char* tail) {
  for (const auto& token : sql_tokens(tail ? tail : "")) {
    if (token.text != ";") return false;
  }
  return true;
}

const char* action_name(int action) {
  switch (action) {
    case SQLITE_CREATE_INDEX: return "CREATE INDEX";
    case SQLITE_CREATE_TABLE: return "CREATE TABLE";
    case SQLITE_CREATE_TEMP_INDEX: return "CREATE TEMP INDEX";
    case SQLITE_CREATE_TEMP_TABLE: return "CREATE TEMP TABLE";
    case SQLITE_CREATE_TEMP_TRIGGER: return "CREATE TEMP TRIGGER";
    case SQLITE_CREATE_TEMP_VIEW: return "CREATE TEMP VIEW";
    case SQLITE_CREATE_TRIGGER: return "CREATE TRIGGER";
    case SQLITE_CREATE_VIEW: return "CREATE VIEW";
    case SQLITE_DELETE: return "DELETE";
    case SQLITE_DROP_INDEX: return "DROP INDEX";
    case SQLITE_DROP_TABLE: return "DROP TABLE";
    case SQLITE_DROP_TEMP_INDEX: return "DROP TEMP INDEX";
    case SQLITE_DROP_TEMP_TABLE: return "DROP TEMP TABLE";
    case SQLITE_DROP_TEMP_TRIGGER: return "DROP TEMP TRIGGER";
    case SQLITE_DROP_TEMP_VIEW: return "DROP TEMP VIEW";
    case SQLITE_DROP_TRIGGER: return "DROP TRIGGER";
    case SQLITE_DROP_VIEW: return "DROP VIEW";
    case SQLITE_INSERT: return "INSERT";
    case SQLITE_PRAGMA: return "PRAGMA";
    case SQLITE_TRANSACTION: return "a transaction statement";
    case SQLITE_UPDATE: return "UPDATE";
    case SQLITE_ATTACH: return "ATTACH";
    case SQLITE_DETACH: return "DETACH";
    case SQLITE_ALTER_TABLE: return "ALTER TABLE";
    case SQLITE_REINDEX: return "REINDEX";
    case SQLITE_ANALYZE: return "ANALYZE";
    case SQLITE_CREATE_VTABLE: return "CREATE VIRTUAL TABLE";
    case SQLITE_DROP_VTABLE: return "DROP VIRTUAL TABLE";
    case SQLITE_SAVEPOINT: return "SAVEPOINT";
    default: return "this statement";
  }
}

// Functions that reach outside the database (files, extensions) or change it.
// (Upper case; the library has load_extension and fts3_tokenizer, the file functions come
// with the sqlite3 shell and its extensions.) Also printf/format: one call such as
// printf('%.*c', 100000000, 'x') runs for seconds inside a single VM step, past the progress
// handler, even though the length limit makes it return NULL in the end.
const std::set<std::string>& sqlite_denied_functions() {
  static const std::set<std::string> names = {
      "LOAD_EXTENSION", "READFILE", "WRITEFILE", "EDIT",          "SQLAR_COMPRESS", "SQLAR_UNCOMPRESS",
      "ZIPFILE",        "LSMODE",   "FSDIR",     "FTS3_TOKENIZER", "SQLITE_DBPAGE", "PRINTF", "FORMAT"};
  return names;
}

// Declared types with TEXT affinity (SQLite's rule: the type name contains CHAR, CLOB or TEXT).
bool text_affinity(const char* decltype_name) {
  if (!decltype_name) return false;
  std::string t = decltype_name;
  for (char& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return t.find("CHAR") != std::string::npos || t.find("CLOB") != std::string::npos ||
         t.find("TEXT") != std::string::npos;
}

}  // namespace

int SqliteExecutor::authorize(void* self, int action, const char* a, const char* b, const char* database,
                              const char* trigger) {
  auto* executor = static_cast<SqliteExecutor*>(self);
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    case SQLITE_FUNCTION: {
      std::string name = b ? b : "";
      for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (!sqlite_denied_functions().count(name)) return SQLITE_OK;
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      executor->refusal_ = "function " + name + "() is not allowed";
      return SQLITE_DENY;
    }
    default: {
      if (action == SQLITE_UPDATE && a && std::string(a) == "sqlite_master") {
        // What SQLite reports while it sets up an eponymous virtual table (json_each, pragma_*).
        if (executor->refusal_.empty()) executor->refusal_ = "table-valued functions are not allowed";
        return SQLITE_DENY;
      }
      std::string what = action_name(action);
      if (action == SQLITE_PRAGMA && a) what += std::string(" ") + a;
      if ((action == SQLITE_INSERT || action == SQLITE_UPDATE || action == SQLITE_DELETE) && a) {
        what += std::string(" on ") + a;
      }
      if (executor->refusal_.empty()) executor->refusal_ = what + " is not allowed";
      return SQLITE_DENY;
    }
  }
}

SqliteExecutor::SqliteExecutor(const std::string& path, const ExecutorLimits& limits)
    : path_(path), limits_(limits) {
  if (limits.max_rows < 1) fail("guard.max_rows must be at least 1");
  if (!(limits.timeout_seconds > 0)) fail("guard.timeout_seconds must be positive");
  if (!std::filesystem::is_regular_file(path)) fail("database " + path + " does not exist (make one with `lathe data db`)");
  const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    fail("cannot open database " + path + " read-only: " + why);
  }
  sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_limit(db_, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit(db_, SQLITE_LIMIT_LENGTH, 1000000);
  sqlite3_limit(db_, SQLITE_LIMIT_SQL_LENGTH, 100000);
  char* err = nullptr;
  if (sqlite3_exec(db_, "PRAGMA query_only = 1", nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string why = err ? err : "unknown error";
    sqlite3_free(err);
    sqlite3_close(db_);
    db_ = nullptr;
    fail("cannot make " + path + " query-only: " + why);
  }
  // Everything after this point goes through the authorizer, our own queries included.
  sqlite3_set_authorizer(db_, &SqliteExecutor::authorize, this);
}

SqliteExecutor::~SqliteExecutor() { sqlite3_close(db_); }

QueryOutcome SqliteExecutor::run(const std::string& sql) {
  QueryOutcome out;
  const auto started = Clock::now();
  auto refuse = [&](const std::string& why) { return refused(why, milliseconds_since(started)); };
  const std::string refusal = lexical_refusal(sql, sqlite_denied_functions());
  if (!refusal.empty()) return refuse(refusal);

  refusal_.clear();
  Statement st;
  const char* tail = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &st.stmt, &tail);
  if (rc != SQLITE_OK) {
    if (!refusal_.empty()) return refuse(refusal_);
    if (rc == SQLITE_AUTH) return refuse(sqlite3_errmsg(db_));
    if (rc == SQLITE_TOOBIG) return refuse("the statement is longer than 100 kB");
    out.status = QueryStatus::Error;
    out.message = sqlite3_errmsg(db_);
    out.guard_ms = milliseconds_since(started);
    return out;
  }
  if (!st.stmt) return refuse("empty statement");
  if (!only_noise(tail)) return refuse("more than one statement (only one SELECT may run)");
  if (!sqlite3_stmt_readonly(st.stmt)) return refuse("the statement would change the database");
  if (sqlite3_stmt_isexplain(st.stmt)) return refuse("EXPLAIN is not allowed");
  if (sqlite3_bind_parameter_count(st.stmt) > 0) return refuse("query parameters (?, :name, $name) are not allowed");
  out.guard_ms = milliseconds_since(started);

  const auto run_start = Clock::now();
  const int ncol = sqlite3_column_count(st.stmt);
  for (int c = 0; c < ncol; ++c) {
    const char* name = sqlite3_column_name(st.stmt, c);
    out.result.columns.push_back(name ? name : "");
  }
  Deadline deadline{run_start + std::chrono::microseconds(static_cast<int64_t>(limits_.timeout_seconds * 1e6))};
  sqlite3_progress_handler(db_, 100, check_deadline, &deadline);  // every 100 VM steps
  int step;
  while ((step = sqlite3_step(st.stmt)) == SQLITE_ROW) {
    if (static_cast<int64_t>(out.result.rows.size()) >= limits_.max_rows) {
      out.result.truncated = true;
      break;
    }
    data::SqlRow row;
    row.reserve(ncol);
    for (int c = 0; c < ncol; ++c) {
      const int type = sqlite3_column_type(st.stmt, c);
      if (type == SQLITE_NULL) {
        row.emplace_back(std::nullopt);
      } else if (type == SQLITE_FLOAT) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(st.stmt, c));  // round-trips
        row.emplace_back(std::string(buf));
      } else {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st.stmt, c));
        row.emplace_back(std::string(text ? text : "", sqlite3_column_bytes(st.stmt, c)));
      }
    }
    out.result.rows.push_back(std::move(row));
  }
  sqlite3_progress_handler(db_, 0, nullptr, nullptr);
  out.execute_ms = milliseconds_since(run_start);
  if (deadline.expired) {
    out.status = QueryStatus::Stopped;
    out.message = time_limit_message(limits_.timeout_seconds);
    out.result = {};
  } else if (step == SQLITE_TOOBIG || step == SQLITE_NOMEM) {
    out.status = QueryStatus::Stopped;
    out.message = std::string(sqlite3_errmsg(db_)) + " (values are limited to 1 MB)";
    out.result = {};
  } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
    out.status = step == SQLITE_AUTH ? QueryStatus::Refused : QueryStatus::Error;
    out.message = !refusal_.empty() ? refusal_ : sqlite3_errmsg(db_);
    out.result = {};
  }
  return out;
}

std::string SqliteExecutor::schema_text() {
  const QueryOutcome r = run(
      "SELECT sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND sql IS NOT NULL "
      "ORDER BY rowid");
  if (!r.ok()) fail("cannot read the schema of " + path_ + ": " + r.message);
  std::string out;
  for (const auto& row : r.result.rows) out += (out.empty() ? "" : "\n") + *row[0] + ";\n";
  return out;
}

std::vector<data::ColumnSamples> SqliteExecutor::text_column_samples(int per_column) {
  std::vector<data::ColumnSamples> out;
  if (per_column <= 0) return out;
  const QueryOutcome tables = run(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid");
  if (!tables.ok()) fail("cannot list the tables of " + path_ + ": " + tables.message);
  for (const auto& table_row : tables.result.rows) {
    const std::string table = *table_row[0];
    // The declared column types come from the prepared statement, no PRAGMA needed.
    Statement st;
    const std::string probe = "SELECT * FROM " + sql_quoted(table, '"') + " LIMIT 0";
    if (sqlite3_prepare_v2(db_, probe.c_str(), -1, &st.stmt, nullptr) != SQLITE_OK) {
      fail("cannot read the columns of " + table + " in " + path_ + ": " + sqlite3_errmsg(db_));
    }
    for (int c = 0; c < sqlite3_column_count(st.stmt); ++c) {
      if (!text_affinity(sqlite3_column_decltype(st.stmt, c))) continue;
      const std::string column = sqlite3_column_name(st.stmt, c);
      out.push_back(sample_text_column(*this, table, column, per_column, path_));
    }
  }
  return out;
}

}  // namespace lathe::agent
