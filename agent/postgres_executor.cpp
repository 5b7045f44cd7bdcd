// Guarded, read-only PostgreSQL execution and the SQLite → PostgreSQL copy (see
// postgres_executor.h).
#include "agent/postgres_executor.h"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "agent/sql_text.h"
#include "core/error.h"

namespace lathe::agent {

namespace {

using Clock = std::chrono::steady_clock;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& c : text) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return text;
}

std::string field(const PGresult* r, int code) {
  const char* v = PQresultErrorField(r, code);
  return v ? v : "";
}

// The conninfo as it may appear in messages: URL passwords and password= values masked.
std::string without_password(const std::string& conninfo) {
  std::string out = conninfo;
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t at = out.find('@', scheme);
    const size_t colon = out.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  const size_t pw = out.find("password=");
  if (pw != std::string::npos) {
    const size_t end = out.find(' ', pw);
    out.replace(pw + 9, (end == std::string::npos ? out.size() : end) - pw - 9, "***");
  }
  return out;
}

PGconn* connect(const std::string& conninfo) {
  // connect_timeout and application_name first: values from conninfo override them.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "lathe-agent", conninfo.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (!conn || PQstatus(conn) != CONNECTION_OK) {
    const std::string why = conn ? one_line(PQerrorMessage(conn)) : "out of memory";
    PQfinish(conn);
    fail("cannot connect to PostgreSQL at " + without_password(conninfo) + ": " + why);
  }
  // Server NOTICEs ("table … does not exist, skipping") are not for the agent's user.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return conn;
}

// Runs a statement that returns no rows; throws with `what` on failure.
void exec_command(PGconn* conn, const std::string& sql, const std::string& what) {
  Result r(PQexec(conn, sql.c_str()));
  const ExecStatusType s = PQresultStatus(r.get());
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) fail(what + ": " + one_line(PQerrorMessage(conn)));
}

// Functions that read or write server files, reach other servers, signal or reconfigure the
// server, take locks or change settings — none has a place in an inventory question.
const std::set<std::string>& postgres_denied_functions() {
  static const std::set<std::string> names = {
      "SET_CONFIG",          "PG_READ_FILE",       "PG_READ_BINARY_FILE", "PG_LS_DIR",
      "PG_STAT_FILE",        "PG_LS_LOGDIR",       "PG_LS_WALDIR",        "PG_LS_TMPDIR",
      "PG_LS_ARCHIVE_STATUSDIR", "LO_IMPORT",      "LO_EXPORT",           "LO_CREATE",
      "LO_CREAT",            "LO_OPEN",            "LOWRITE",             "LO_TRUNCATE",
      "LO_UNLINK",           "LO_FROM_BYTEA",      "LO_PUT",              "DBLINK",
      "DBLINK_EXEC",         "DBLINK_CONNECT",     "PG_TERMINATE_BACKEND", "PG_CANCEL_BACKEND",
      "PG_RELOAD_CONF",      "PG_ROTATE_LOGFILE",  "PG_PROMOTE",          "PG_SWITCH_WAL",
      "PG_CREATE_RESTORE_POINT", "PG_FILE_WRITE",  "PG_ADVISORY_LOCK",    "PG_ADVISORY_XACT_LOCK",
      "PG_ADVISORY_LOCK_SHARED", "PG_TRY_ADVISORY_LOCK", "QUERY_TO_XML",  "CURSOR_TO_XML",
      "TABLE_TO_XML",        "PG_NOTIFY",          "TXID_CURRENT",        "PG_CURRENT_XACT_ID"};
  return names;
}

}  // namespace

PostgresExecutor::PostgresExecutor(const std::string& conninfo, const ExecutorLimits& limits)
    : target_(without_password(conninfo)), limits_(limits) {
  if (limits.max_rows < 1) fail("guard.max_rows must be at least 1");
  if (!(limits.timeout_seconds > 0)) fail("guard.timeout_seconds must be positive");
  conn_ = connect(conninfo);
  try {
    exec_command(conn_, "SET client_encoding = 'UTF8'", "cannot set up the session on " + target_);
    exec_command(conn_, "SET default_transaction_read_only = on", "cannot set up the session on " + target_);
  } catch (...) {
    PQfinish(conn_);
    throw;
  }
}

PostgresExecutor::~PostgresExecutor() { PQfinish(conn_); }

QueryOutcome PostgresExecutor::run(const std::string& sql) {
  const auto started = Clock::now();
  const std::string refusal = lexical_refusal(sql, postgres_denied_functions());
  if (!refusal.empty()) return refused(refusal, milliseconds_since(started));
  QueryOutcome out = run_checked(sql);
  out.guard_ms = milliseconds_since(started) - out.execute_ms;
  return out;
}

QueryOutcome PostgresExecutor::run_checked(const std::string& sql) {
  QueryOutcome out;
  // The cursor body must not end in ';' (a trailing one is allowed by the text check).
  std::string body = sql;
  for (;;) {
    const size_t last = body.find_last_not_of(" \t\r\n");
    if (last == std::string::npos || body[last] != ';') break;
    body.resize(last);
  }
  char setup[160];
  std::snprintf(setup, sizeof setup, "BEGIN READ ONLY; SET LOCAL statement_timeout = %lld",
                static_cast<long long>(limits_.timeout_seconds * 1000 + 0.5));
  exec_command(conn_, setup, "PostgreSQL at " + target_);

  auto classify = [&](const PGresult* r) {
    const std::string state = field(r, PG_DIAG_SQLSTATE);
    std::string message = one_line(field(r, PG_DIAG_MESSAGE_PRIMARY));
    if (message.empty()) message = one_line(PQerrorMessage(conn_));
    out.result = {};
    if (state == "57014") {
      out.status = QueryStatus::Stopped;
      out.message = time_limit_message(limits_.timeout_seconds);
    } else if (state == "25006" || state == "42501" || state == "0A000" ||
               (state == "42601" && message.find("multiple commands") != std::string::npos)) {
      // read-only transaction, missing privilege, data-modifying WITH in a cursor, two statements
      out.status = QueryStatus::Refused;
      out.message = message;
    } else {
      out.status = QueryStatus::Error;
      out.message = message;
    }
  };

  const auto declare_start = Clock::now();
  const std::string declare = "DECLARE lathe_agent_query NO SCROLL CURSOR FOR " + body;
  Result declared(PQexecParams(conn_, declare.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0));
  out.guard_ms = milliseconds_since(declare_start);
  if (PQresultStatus(declared.get()) != PGRES_COMMAND_OK) {
    classify(declared.get());
  } else {
    const auto fetch_start = Clock::now();
    const std::string fetch = "FETCH FORWARD " + std::to_string(limits_.max_rows + 1) + " FROM lathe_agent_query";
    Result rows(PQexecParams(conn_, fetch.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0));
    out.execute_ms = milliseconds_since(fetch_start);
    if (PQresultStatus(rows.get()) != PGRES_TUPLES_OK) {
      classify(rows.get());
    } else {
      const int nfields = PQnfields(rows.get());
      for (int c = 0; c < nfields; ++c) out.result.columns.push_back(PQfname(rows.get(), c));
      const int ntuples = PQntuples(rows.get());
      for (int r = 0; r < ntuples; ++r) {
        if (r >= limits_.max_rows) {
          out.result.truncated = true;
          break;
        }
        data::SqlRow row;
        row.reserve(nfields);
        for (int c = 0; c < nfields; ++c) {
          if (PQgetisnull(rows.get(), r, c)) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(std::string(PQgetvalue(rows.get(), r, c), PQgetlength(rows.get(), r, c)));
          }
        }
        out.result.rows.push_back(std::move(row));
      }
    }
  }
  exec_command(conn_, "ROLLBACK", "PostgreSQL at " + target_);
  return out;
}

std::string PostgresExecutor::schema_text() {
  const QueryOutcome columns = run(
      "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
      "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
      "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
      "ORDER BY c.table_name, c.ordinal_position");
  if (!columns.ok()) fail("cannot read the schema of " + target_ + ": " + columns.message);
  // From pg_catalog: information_schema hides constraints from a role that may only SELECT.
  const QueryOutcome keys = run(
      "SELECT c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
      "JOIN pg_namespace n ON n.oid = c.relnamespace "
      "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey) "
      "WHERE i.indisprimary AND n.nspname = current_schema() "
      "ORDER BY c.relname, array_position(i.indkey::int2[], a.attnum)");
  if (!keys.ok()) fail("cannot read the primary keys of " + target_ + ": " + keys.message);
  std::map<std::string, std::vector<std::string>> primary;
  for (const auto& row : keys.result.rows) primary[*row[0]].push_back(*row[1]);
  std::string out, table;
  auto close_table = [&] {
    if (table.empty()) return;
    if (primary.count(table)) {
      out += ", PRIMARY KEY (";
      for (size_t i = 0; i < primary[table].size(); ++i) out += (i ? ", " : "") + primary[table][i];
      out += ")";
    }
    out += ");\n";
  };
  for (const auto& row : columns.result.rows) {
    if (*row[0] != table) {
      close_table();
      table = *row[0];
      out += "CREATE TABLE " + table + "(";
    } else {
      out += ", ";
    }
    out += *row[1] + " " + *row[2];
  }
  close_table();
  return out;
}

std::vector<data::ColumnSamples> PostgresExecutor::text_column_samples(int per_column) {
  std::vector<data::ColumnSamples> out;
  if (per_column <= 0) return out;
  const QueryOutcome columns = run(
      "SELECT c.table_name, c.column_name FROM information_schema.columns c "
      "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
      "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
      "AND c.data_type IN ('text', 'character varying', 'character') "
      "ORDER BY c.table_name, c.ordinal_position");
  if (!columns.ok()) fail("cannot list the text columns of " + target_ + ": " + columns.message);
  for (const auto& row : columns.result.rows) {
    const std::string& table = *row[0];
    const std::string& column = *row[1];
    out.push_back(sample_text_column(*this, table, column, per_column, target_));
  }
  return out;
}

void copy_sqlite_to_postgres(const std::string& sqlite_path, const std::string& conninfo,
                             const std::string& reader_role) {
  const data::SqlDatabase source(sqlite_path);
  data::SqlLimits unlimited;
  unlimited.max_rows = INT64_MAX;
  unlimited.timeout_seconds = 3600;
  const auto tables = source.query(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid");
  if (tables.rows.empty()) fail(sqlite_path + " has no tables to copy");

  PGconn* raw = connect(conninfo);
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(raw, PQfinish);
  const std::string target = without_password(conninfo);
  exec_command(conn.get(), "SET client_encoding = 'UTF8'", "PostgreSQL at " + target);
  exec_command(conn.get(), "BEGIN", "PostgreSQL at " + target);
  for (const auto& t : tables.rows) {
    const std::string table = *t[0];
    const auto info = source.query("SELECT name, upper(type), pk FROM pragma_table_info(" + sql_quoted(table, '\'') +
                                   ") ORDER BY cid");
    std::string ddl = "CREATE TABLE " + sql_quoted(table, '"') + " (";
    std::vector<std::pair<int, std::string>> key;
    for (size_t i = 0; i < info.rows.size(); ++i) {
      const std::string& name = *info.rows[i][0];
      const std::string type = info.rows[i][1].value_or("");
      const std::string pg_type = type.find("INT") != std::string::npos ? "bigint"
                                  : (type.find("REAL") != std::string::npos || type.find("FLOA") != std::string::npos ||
                                     type.find("DOUB") != std::string::npos)
                                      ? "double precision"
                                      : "text";
      ddl += (i ? ", " : "") + sql_quoted(name, '"') + " " + pg_type;
      const int pk = std::stoi(info.rows[i][2].value_or("0"));
      if (pk > 0) key.emplace_back(pk, sql_quoted(name, '"'));
    }
    if (!key.empty()) {
      std::sort(key.begin(), key.end());
      ddl += ", PRIMARY KEY (";
      for (size_t i = 0; i < key.size(); ++i) ddl += (i ? ", " : "") + key[i].second;
      ddl += ")";
    }
    ddl += ")";
    exec_command(conn.get(), "DROP TABLE IF EXISTS " + sql_quoted(table, '"') + " CASCADE",
                 "cannot replace table " + table + " on " + target);
    exec_command(conn.get(), ddl, "cannot create table " + table + " on " + target);

    Result copy(PQexec(conn.get(), ("COPY " + sql_quoted(table, '"') + " FROM STDIN").c_str()));
    if (PQresultStatus(copy.get()) != PGRES_COPY_IN) {
      fail("cannot copy into " + table + " on " + target + ": " + one_line(PQerrorMessage(conn.get())));
    }
    const auto rows = source.query("SELECT * FROM " + sql_quoted(table, '"'), unlimited);
    std::string buffer;
    auto flush = [&] {
      if (!buffer.empty() && PQputCopyData(conn.get(), buffer.data(), static_cast<int>(buffer.size())) != 1) {
        fail("copying " + table + " to " + target + ": " + one_line(PQerrorMessage(conn.get())));
      }
      buffer.clear();
    };
    for (const auto& row : rows.rows) {
      for (size_t c = 0; c < row.size(); ++c) {
        if (c) buffer += '\t';
        if (!row[c]) {
          buffer += "\\N";
          continue;
        }
        for (char ch : *row[c]) {  // COPY text format escapes
          switch (ch) {
            case '\\': buffer += "\\\\"; break;
            case '\t': buffer += "\\t"; break;
            case '\n': buffer += "\\n"; break;
            case '\r': buffer += "\\r"; break;
            default: buffer += ch;
          }
        }
      }
      buffer += '\n';
      if (buffer.size() > (1 << 20)) flush();
    }
    flush();
    if (PQputCopyEnd(conn.get(), nullptr) != 1) fail("copying " + table + ": " + one_line(PQerrorMessage(conn.get())));
    Result done(PQgetResult(conn.get()));
    if (PQresultStatus(done.get()) != PGRES_COMMAND_OK) {
      fail("cannot copy " + table + " to " + target + ": " + one_line(PQerrorMessage(conn.get())));
    }
    while (PGresult* extra = PQgetResult(conn.get())) PQclear(extra);
    if (!reader_role.empty()) {
      exec_command(conn.get(), "GRANT SELECT ON " + sql_quoted(table, '"') + " TO " + sql_quoted(reader_role, '"'),
                   "cannot grant SELECT on " + table + " to " + reader_role);
    }
  }
  // SQLite's julianday(text) for 'YYYY-MM-DD[ HH:MM:SS]' values: days since noon UTC, 4714 BC.
  exec_command(conn.get(),
               "CREATE OR REPLACE FUNCTION julianday(d text) RETURNS double precision LANGUAGE sql IMMUTABLE "
               "AS $$ SELECT (extract(epoch FROM d::timestamp) / 86400.0 + 2440587.5)::double precision $$",
               "cannot create julianday() on " + target);
  if (!reader_role.empty()) {
    exec_command(conn.get(), "GRANT USAGE ON SCHEMA public TO " + sql_quoted(reader_role, '"'),
                 "cannot grant schema usage to " + reader_role);
  }
  exec_command(conn.get(), "COMMIT", "cannot commit the copy on " + target);
}

}  // namespace lathe::agent
