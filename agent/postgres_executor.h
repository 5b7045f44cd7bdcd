// The PostgreSQL backend of the agent's executor (libpq), behind the same interface and
// guard as SQLite. Each query runs as
//   BEGIN READ ONLY; SET LOCAL statement_timeout = …;
//   DECLARE c NO SCROLL CURSOR FOR <sql>;  FETCH FORWARD max_rows + 1 FROM c;  ROLLBACK
// with the DECLARE sent through the extended protocol (PQexecParams), which the server
// refuses to run with more than one statement. A cursor takes only SELECT/VALUES and no
// data-modifying WITH; the read-only transaction refuses writes, nextval and the like; the
// rollback undoes any setting a query changed. Before that the text must start with SELECT
// or WITH, hold one statement, and call none of the functions that read server files, talk
// to other servers, signal backends or change settings. Connect as a role that may only
// SELECT (docs/agent.md shows how): the guard is defence in depth, not a permission system.
//
// PostgreSQL lacks SQLite's julianday(); copy_sqlite_to_postgres adds one so the prompt's
// days-in-stock convention works unchanged.
#pragma once
#include <string>

#include "agent/executor.h"

struct pg_conn;

namespace lathe::agent {

class PostgresExecutor : public SqlExecutor {
 public:
  // conninfo: a postgresql:// URL or libpq key=value string. Throws lathe::Error with
  // libpq's reason when the connection fails.
  PostgresExecutor(const std::string& conninfo, const ExecutorLimits& limits);
  ~PostgresExecutor() override;
  PostgresExecutor(const PostgresExecutor&) = delete;
  PostgresExecutor& operator=(const PostgresExecutor&) = delete;

  QueryOutcome run(const std::string& sql) override;
  std::string dialect() const override { return "PostgreSQL"; }
  std::string schema_text() override;
  std::vector<data::ColumnSamples> text_column_samples(int per_column) override;
  const ExecutorLimits& limits() const override { return limits_; }

 private:
  QueryOutcome run_checked(const std::string& sql);  // the guarded execution after the text checks
  std::string target_;  // for messages: the conninfo without its password
  ExecutorLimits limits_;
  pg_conn* conn_ = nullptr;
};

// Copies every table of a SQLite database (the inventory) into the PostgreSQL database at
// `conninfo`, replacing tables of the same names: INTEGER → bigint, REAL → double precision,
// anything else → text, primary keys kept; adds julianday(text). When `reader_role` is not
// empty it gets USAGE on the schema and SELECT on the tables. One transaction.
void copy_sqlite_to_postgres(const std::string& sqlite_path, const std::string& conninfo,
                             const std::string& reader_role = "");

}  // namespace lathe::agent
