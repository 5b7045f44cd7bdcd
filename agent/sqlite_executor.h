// The SQLite backend of the agent's executor, hardened for SQL that a model (or a person
// trying to break it) wrote. Layers, each enough on its own for the common attacks:
//  1. the connection: SQLITE_OPEN_READONLY, PRAGMA query_only, defensive mode (no
//     writable_schema), no extension loading, untrusted schema, no ATTACH (limit 0), strings
//     and blobs capped at 1 MB, SQL text capped at 100 kB;
//  2. the text (sql_text.h): SELECT or WITH first, one statement, no word that only writing
//     or schema statements use, no denied function;
//  3. SQLite's own parser: sqlite3_prepare_v2 compiles exactly one statement and its tail
//     pointer shows any second one; an authorizer allows only SELECT, reads, recursive CTEs
//     and functions (minus load_extension, readfile, writefile, edit, fts3_tokenizer, printf), so
//     writes, ATTACH/DETACH, PRAGMA, temp tables/triggers/views, transactions, ANALYZE,
//     REINDEX and virtual tables are refused whatever their spelling; sqlite3_stmt_readonly
//     must hold; no EXPLAIN, no unbound parameters;
//  4. running: a progress handler stops it at the time limit; rows beyond the cap are not read;
//     a value over 1 MB stops it too (string-doubling bombs).
#pragma once
#include <memory>
#include <string>

#include "agent/executor.h"

struct sqlite3;

namespace lathe::agent {

class SqliteExecutor : public SqlExecutor {
 public:
  // Throws lathe::Error naming the path when the file is missing or cannot be opened.
  SqliteExecutor(const std::string& path, const ExecutorLimits& limits);
  ~SqliteExecutor() override;
  SqliteExecutor(const SqliteExecutor&) = delete;
  SqliteExecutor& operator=(const SqliteExecutor&) = delete;

  QueryOutcome run(const std::string& sql) override;
  std::string dialect() const override { return "SQLite"; }
  std::string schema_text() override;
  std::vector<data::ColumnSamples> text_column_samples(int per_column) override;
  const ExecutorLimits& limits() const override { return limits_; }

 private:
  // sqlite3_set_authorizer's callback; records why it refused in refusal_.
  static int authorize(void* self, int action, const char* a, const char* b, const char* database,
                       const char* trigger);

  std::string path_;
  ExecutorLimits limits_;
  sqlite3* db_ = nullptr;
  std::string refusal_;  // the authorizer's last refusal, cleared before each statement
};

}  // namespace lathe::agent
