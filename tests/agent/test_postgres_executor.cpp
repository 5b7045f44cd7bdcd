// The PostgreSQL backend against a real server this test starts on loopback (Debian's
// postgresql package: initdb + pg_ctl into a temporary folder; as an unprivileged user when
// run as root, since postgres refuses root). Skipped with a message where the binaries are
// missing or the server cannot start. One test, one server: initdb costs seconds.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "agent/agent.h"
#include "agent/local_server.h"
#include "agent/postgres_executor.h"
#include "agent/sqlite_executor.h"
#include "data/collect.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "tests/support/fake_openai_server.h"
#include "tests/support/test_support.h"

namespace lathe::agent {
namespace {

namespace fs = std::filesystem;

std::string postgres_bin_dir() {
  std::string best;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const fs::path bin = e.path() / "bin";
    if (fs::exists(bin / "initdb") && fs::exists(bin / "pg_ctl") && bin.string() > best) best = bin.string();
  }
  return best;
}

std::string tail_of(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

// A throwaway cluster; stopped (immediate mode) when the object dies.
class PostgresServer {
 public:
  PostgresServer(const std::string& bin, const std::string& dir) : bin_(bin), dir_(dir) {
    if (::geteuid() == 0) {
      // postgres refuses to run as root: hand the folder to `nobody` and drop privileges.
      as_user_ = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
      if (::chown(dir.c_str(), 65534, 65534) != 0) {
        problem_ = "cannot chown " + dir + " to nobody";
        return;
      }
      ::chmod(dir.c_str(), 0700);
    }
    port_ = free_local_port();
    const std::string initdb = as_user_ + bin + "/initdb -D " + dir + "/data -U lathe --auth=trust -E UTF8 --locale=C -N > " +
                               dir + "/initdb.log 2>&1";
    if (std::system(initdb.c_str()) != 0) {
      problem_ = "initdb failed: " + tail_of(dir + "/initdb.log");
      return;
    }
    const std::string start = as_user_ + bin + "/pg_ctl -D " + dir + "/data -l " + dir + "/server.log -w -t 60 -o \"-h 127.0.0.1 -p " +
                              std::to_string(port_) + " -k " + dir + " -F\" start > " + dir + "/pg_ctl.log 2>&1";
    if (std::system(start.c_str()) != 0) {
      problem_ = "the server did not start: " + tail_of(dir + "/server.log");
      return;
    }
    started_ = true;
  }
  ~PostgresServer() {
    if (started_) {
      const std::string stop = as_user_ + bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop > /dev/null 2>&1";
      if (std::system(stop.c_str()) != 0) std::fprintf(stderr, "note: pg_ctl stop failed for %s\n", dir_.c_str());
    }
  }
  const std::string& problem() const { return problem_; }
  std::string conninfo(const std::string& user) const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + user + " dbname=postgres";
  }

 private:
  std::string bin_, dir_, as_user_, problem_;
  int port_ = 0;
  bool started_ = false;
};

std::string admin_query(const std::string& conninfo, const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  std::string value;
  if (PQstatus(conn) == CONNECTION_OK) {
    PGresult* r = PQexec(conn, sql.c_str());
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) value = PQgetvalue(r, 0, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
      ADD_FAILURE() << sql << ": " << PQerrorMessage(conn);
    }
    PQclear(r);
  } else {
    ADD_FAILURE() << "admin connection: " << PQerrorMessage(conn);
  }
  PQfinish(conn);
  return value;
}

TEST(PostgresBackend, GuardLimitsCopiedInventoryAndTheAgentLoop) {
  const std::string bin = postgres_bin_dir();
  if (bin.empty()) GTEST_SKIP() << "PostgreSQL server binaries are not installed (Debian package postgresql); skipping";
  testing::TempDir dir;
  const std::string cluster = dir.file("pg");
  fs::create_directory(cluster);
  PostgresServer server(bin, cluster);
  if (!server.problem().empty()) GTEST_SKIP() << "cannot start a PostgreSQL server here: " << server.problem();
  const std::string admin = server.conninfo("lathe");

  // The inventory, copied from SQLite; the agent logs in as a role that may only read it.
  const std::string sqlite_path = dir.file("inventory.sqlite");
  data::InventoryDbOptions options;
  options.vehicles = 200;
  data::generate_inventory_db(sqlite_path, options);
  admin_query(admin, "CREATE ROLE agent_reader LOGIN");
  admin_query(admin, "CREATE SEQUENCE agent_counter; GRANT USAGE ON SEQUENCE agent_counter TO agent_reader");
  copy_sqlite_to_postgres(sqlite_path, admin, "agent_reader");
  const std::string fingerprint_sql =
      "SELECT md5(string_agg(vehicle_id || status || guide_price::text || pickup_date, ',' ORDER BY vehicle_id)) "
      "FROM vehicles";
  const std::string fingerprint = admin_query(admin, fingerprint_sql);
  ASSERT_FALSE(fingerprint.empty());

  ExecutorLimits limits;
  limits.max_rows = 20;
  limits.timeout_seconds = 0.5;
  PostgresExecutor pg(server.conninfo("agent_reader"), limits);
  EXPECT_EQ(pg.dialect(), "PostgreSQL");

  // Every template family's gold query gives the SQLite answer on the copy.
  ExecutorLimits wide;
  wide.max_rows = 5000;
  PostgresExecutor pg_wide(server.conninfo("agent_reader"), wide);
  SqliteExecutor lite(sqlite_path, wide);
  data::CollectOptions collect;
  collect.per_family = 1;
  for (const auto& e : data::collect_template_questions(data::SqlDatabase(sqlite_path), collect)) {
    const QueryOutcome a = lite.run(e.sql), b = pg_wide.run(e.sql);
    ASSERT_TRUE(a.ok()) << e.sql << ": " << a.message;
    ASSERT_TRUE(b.ok()) << e.family << ": " << e.sql << ": " << b.message;
    const bool ordered = data::has_top_level_order_by(e.sql);
    EXPECT_TRUE(data::results_match(data::canonicalize(a.result, ordered), data::canonicalize(b.result, ordered)))
        << e.family << ": " << e.sql;
  }

  struct Case {
    std::string sql;
    QueryStatus expected;
    std::string reason;
  };
  const std::vector<Case> hostile = {
      {"DELETE FROM vehicles", QueryStatus::Refused, "starts with DELETE"},
      {"WITH d AS (DELETE FROM vehicles RETURNING *) SELECT count(*) FROM d", QueryStatus::Refused, "uses DELETE"},
      {"SELECT 1; UPDATE vehicles SET status = 'sold'", QueryStatus::Refused, "more than one statement"},
      {"SELECT $q$ ; $q$; DROP TABLE stores", QueryStatus::Refused, "more than one statement"},
      {"SELECT E'\\''; DROP TABLE stores; --'", QueryStatus::Refused, "more than one statement"},
      {"SELECT * INTO copy_of_vehicles FROM vehicles", QueryStatus::Refused, "uses INTO"},
      {"COPY vehicles TO '/tmp/out.csv'", QueryStatus::Refused, "starts with COPY"},
      {"SET default_transaction_read_only = off", QueryStatus::Refused, "starts with SET"},
      {"SELECT set_config('default_transaction_read_only', 'off', false)", QueryStatus::Refused, "set_config()"},
      {"SELECT pg_read_file('/etc/passwd')", QueryStatus::Refused, "pg_read_file()"},
      {"SELECT lo_import('/etc/passwd')", QueryStatus::Refused, "lo_import()"},
      {"SELECT pg_terminate_backend(1)", QueryStatus::Refused, "pg_terminate_backend()"},
      // past the text checks, the server's own: read-only transaction, privileges, the timeout
      {"SELECT lo_creat(-1)", QueryStatus::Refused, "lo_creat()"},
      {"SELECT nextval('agent_counter')", QueryStatus::Refused, "read-only transaction"},
      {"SELECT rolpassword FROM pg_authid", QueryStatus::Refused, "permission denied"},
      {"SELECT pg_sleep(30)", QueryStatus::Stopped, "time limit"},
      {"SELECT count(*) FROM vehicles a, vehicles b, vehicles c, vehicles d", QueryStatus::Stopped, "time limit"},
  };
  for (const auto& h : hostile) {
    const auto start = std::chrono::steady_clock::now();
    const QueryOutcome r = pg.run(h.sql);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(query_status_name(r.status), std::string(query_status_name(h.expected))) << h.sql << " → " << r.message;
    EXPECT_NE(r.message.find(h.reason), std::string::npos) << h.sql << " → " << r.message;
    EXPECT_LT(seconds, 5.0) << h.sql;
  }
  const QueryOutcome syntax = pg.run("SELECT nope FROM vehicles");
  EXPECT_EQ(syntax.status, QueryStatus::Error);
  EXPECT_NE(syntax.message.find("column \"nope\" does not exist"), std::string::npos) << syntax.message;

  // Row cap: a cross join comes back cut, with the flag set.
  const QueryOutcome cut = pg.run("SELECT a.vehicle_id FROM vehicles a, vehicles b");
  ASSERT_TRUE(cut.ok()) << cut.message;
  EXPECT_EQ(cut.result.rows.size(), 20u);
  EXPECT_TRUE(cut.result.truncated);
  const QueryOutcome count = pg.run("SELECT count(*) FROM vehicles;");
  ASSERT_TRUE(count.ok()) << count.message;
  EXPECT_EQ(*count.result.rows[0][0], "200");
  EXPECT_FALSE(count.result.truncated);
  // A NULL survives the trip.
  const QueryOutcome null_cell = pg.run("SELECT NULL::text AS x, julianday('2024-06-30') - julianday('2024-06-01')");
  ASSERT_TRUE(null_cell.ok()) << null_cell.message;
  EXPECT_FALSE(null_cell.result.rows[0][0].has_value());
  EXPECT_EQ(*null_cell.result.rows[0][1], "29");

  // The live schema for the prompt.
  const std::string schema = pg.schema_text();
  EXPECT_NE(schema.find("CREATE TABLE vehicles(vehicle_id text, brand text"), std::string::npos) << schema;
  EXPECT_NE(schema.find("guide_price double precision"), std::string::npos) << schema;
  EXPECT_NE(schema.find("PRIMARY KEY (vehicle_id)"), std::string::npos) << schema;
  bool brand_sampled = false;
  for (const auto& s : pg.text_column_samples(2)) brand_sampled |= s.table == "vehicles" && s.column == "brand";
  EXPECT_TRUE(brand_sampled);

  // The agent loop over PostgreSQL: the prompt asks for its dialect, an error is retried.
  std::atomic<int> calls{0};
  testing::FakeOpenAiServer endpoint([&](const testing::FakeRequest&) {
    const int i = calls++;
    const std::string sql = i == 0 ? "SELECT count(*) FROM vehicle" : "SELECT count(*) FROM vehicles WHERE brand = '宝马'";
    return testing::FakeReply{200, testing::fake_chat_reply({data::format_answer("plan", sql)})};
  });
  OpenAiClientOptions client_options;
  client_options.endpoint = endpoint.endpoint();
  const OpenAiClient client(client_options);
  Tracer tracer;
  Agent agent(client, "m", pg, AgentConfig{}, tracer);
  EXPECT_NE(agent.system_prompt().find("one PostgreSQL SELECT query"), std::string::npos);
  const AgentAnswer a = agent.ask("宝马有几辆？");
  ASSERT_TRUE(a.ok);
  EXPECT_EQ(a.attempts.size(), 2u);
  EXPECT_NE(a.attempts[0].message.find("relation \"vehicle\" does not exist"), std::string::npos);
  EXPECT_EQ(*a.result.rows[0][0],
            *data::SqlDatabase(sqlite_path).query("SELECT count(*) FROM vehicles WHERE brand = '宝马'").rows[0][0]);

  EXPECT_EQ(admin_query(admin, fingerprint_sql), fingerprint) << "the data changed";
  EXPECT_EQ(admin_query(admin, "SELECT count(*) FROM pg_tables WHERE tablename = 'copy_of_vehicles'"), "0");
  EXPECT_EQ(admin_query(admin, "SELECT last_value FROM agent_counter"), "1");  // nextval never ran
  EXPECT_EQ(admin_query(admin, "SELECT is_called FROM agent_counter"), "f");
}

TEST(PostgresBackend, ConnectionFailureNamesTheTargetWithoutThePassword) {
  const int port = free_local_port();  // nothing listens there
  try {
    PostgresExecutor pg("postgresql://agent:s3cret@127.0.0.1:" + std::to_string(port) + "/inventory", {});
    FAIL() << "expected a connection error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("cannot connect to PostgreSQL at postgresql://agent:***@127.0.0.1:"), std::string::npos)
        << message;
    EXPECT_EQ(message.find("s3cret"), std::string::npos);
  }
  EXPECT_TRUE(is_postgres_target("postgresql://h/db"));
  EXPECT_TRUE(is_postgres_target("host=/tmp dbname=inventory"));
  EXPECT_FALSE(is_postgres_target("runs/inventory.sqlite"));
}

}  // namespace
}  // namespace lathe::agent
