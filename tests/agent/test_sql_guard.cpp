// The agent's guard and SQLite executor on hostile and runaway SQL: every statement of the
// suite is refused or stopped, the database file's checksum (and its folder) is unchanged
// afterwards, and the gold queries of every template family still run.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <set>

#include "agent/sql_text.h"
#include "agent/sqlite_executor.h"
#include "core/atomic_file.h"
#include "data/collect.h"
#include "data/inventory_db.h"
#include "tests/support/test_support.h"

namespace lathe::agent {
namespace {

uint64_t fnv1a(const std::string& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::set<std::string> folder_listing(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

class SqlGuard : public ::testing::Test {
 protected:
  void SetUp() override {
    data::InventoryDbOptions options;
    options.vehicles = 300;
    data::generate_inventory_db(db_path(), options);
  }
  std::string db_path() const { return dir_.file("inventory.sqlite"); }
  testing::TempDir dir_;
};

struct Hostile {
  std::string sql;
  QueryStatus expected;
  std::string reason;  // a substring of the refusal or stop message
};

TEST_F(SqlGuard, HostileAndRunawayStatementsAreRefusedOrStoppedAndTheFileIsUnchanged) {
  const std::string other = dir_.file("other.db");
  const std::string copy = dir_.file("copy.db");
  const std::vector<Hostile> suite = {
      // writes, plain and inside a CTE
      {"DROP TABLE vehicles", QueryStatus::Refused, "starts with DROP"},
      {"DELETE FROM vehicles", QueryStatus::Refused, "starts with DELETE"},
      {"UPDATE vehicles SET status = 'sold'", QueryStatus::Refused, "starts with UPDATE"},
      {"INSERT INTO stores VALUES (99, 'x', 'y', 'z')", QueryStatus::Refused, "starts with INSERT"},
      {"REPLACE INTO meta VALUES ('as_of_date', '2000-01-01')", QueryStatus::Refused, "starts with REPLACE"},
      {"WITH x AS (SELECT 1) UPDATE vehicles SET guide_price = 0", QueryStatus::Refused, "uses UPDATE"},
      {"WITH x AS (SELECT 1) DELETE FROM vehicles", QueryStatus::Refused, "uses DELETE"},
      {"WITH x AS (SELECT 1) INSERT INTO meta SELECT 'k', 'v'", QueryStatus::Refused, "uses INSERT"},
      {"WITH d AS (DELETE FROM vehicles RETURNING *) SELECT * FROM d", QueryStatus::Refused, "uses DELETE"},
      {"SELECT * INTO backup FROM vehicles", QueryStatus::Refused, "uses INTO"},
      // a second statement, hidden or not
      {"SELECT 1; DELETE FROM vehicles", QueryStatus::Refused, "more than one statement"},
      {"SELECT count(*) FROM vehicles; DROP TABLE vehicles;", QueryStatus::Refused, "more than one statement"},
      {"SELECT 1 /* harmless */; DROP TABLE stores", QueryStatus::Refused, "more than one statement"},
      {"SELECT 1 /* ; */ ; DELETE FROM vehicles", QueryStatus::Refused, "more than one statement"},
      {"SELECT 1 -- comment\n; DELETE FROM vehicles", QueryStatus::Refused, "more than one statement"},
      {"SELECT 1; SELECT 2", QueryStatus::Refused, "more than one statement"},
      // SQLite reads $x$ as a parameter, not a quote: only the prepare tail sees the DELETE
      {"SELECT $x$; DELETE FROM vehicles; $x$", QueryStatus::Refused, "more than one statement"},
      {"/* SELECT */ DELETE FROM vehicles", QueryStatus::Refused, "starts with DELETE"},
      {"-- SELECT\nDROP TABLE meta", QueryStatus::Refused, "starts with DROP"},
      {"SELECT * FROM vehicles WHERE 1 = 1; UPDATE vehicles SET guide_price = 0 --", QueryStatus::Refused,
       "more than one statement"},
      // other files, settings, schema, transactions
      {"ATTACH DATABASE '" + other + "' AS x", QueryStatus::Refused, "starts with ATTACH"},
      {"SELECT * FROM vehicles; ATTACH '" + other + "' AS e; CREATE TABLE e.t(a)", QueryStatus::Refused,
       "more than one statement"},
      {"DETACH DATABASE main", QueryStatus::Refused, "starts with DETACH"},
      {"PRAGMA writable_schema = 1", QueryStatus::Refused, "starts with PRAGMA"},
      {"PRAGMA query_only = 0", QueryStatus::Refused, "starts with PRAGMA"},
      {"VACUUM INTO '" + copy + "'", QueryStatus::Refused, "starts with VACUUM"},
      {"VACUUM", QueryStatus::Refused, "starts with VACUUM"},
      {"CREATE TEMP TABLE t AS SELECT * FROM vehicles", QueryStatus::Refused, "starts with CREATE"},
      {"WITH t AS (SELECT 1) SELECT * FROM t; CREATE TEMP VIEW v AS SELECT 1", QueryStatus::Refused,
       "more than one statement"},
      {"CREATE TEMP TRIGGER t AFTER INSERT ON stores BEGIN DELETE FROM vehicles; END", QueryStatus::Refused,
       "starts with CREATE"},
      {"BEGIN; DELETE FROM vehicles; COMMIT", QueryStatus::Refused, "starts with BEGIN"},
      {"ANALYZE", QueryStatus::Refused, "starts with ANALYZE"},
      {"EXPLAIN DELETE FROM vehicles", QueryStatus::Refused, "starts with EXPLAIN"},
      // functions that reach outside the database
      {"SELECT load_extension('/tmp/evil.so')", QueryStatus::Refused, "load_extension() is not allowed"},
      {"SELECT \"load_extension\"('/tmp/evil.so', 'init')", QueryStatus::Refused, "load_extension() is not allowed"},
      {"SELECT readfile('/etc/passwd')", QueryStatus::Refused, "readfile() is not allowed"},
      {"SELECT writefile('" + dir_.file("x") + "', 'data')", QueryStatus::Refused, "writefile() is not allowed"},
      {"SELECT * FROM json_each('[1, 2]')", QueryStatus::Refused, "table-valued functions are not allowed"},
      {"SELECT * FROM pragma_table_info('vehicles')", QueryStatus::Refused, "not allowed"},
      {"SELECT ?", QueryStatus::Refused, "parameters"},
      // runaway work: the time limit or the value size limit stops it
      {"SELECT count(*) FROM vehicles a, vehicles b, vehicles c, vehicles d", QueryStatus::Stopped, "time limit"},
      {"SELECT count(*) FROM vehicles a CROSS JOIN vehicles b CROSS JOIN vehicles c CROSS JOIN stores d "
       "WHERE a.guide_price + b.guide_price + c.guide_price < d.store_id",
       QueryStatus::Stopped, "time limit"},
      {"WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r", QueryStatus::Stopped,
       "time limit"},
      {"WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r ORDER BY x DESC LIMIT 1",
       QueryStatus::Stopped, "time limit"},
      {"WITH RECURSIVE bomb(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM bomb) SELECT length(s) FROM bomb",
       QueryStatus::Stopped, "too big"},
      {"SELECT zeroblob(2000000000)", QueryStatus::Stopped, "too big"},
      // one call that runs for seconds inside a single VM step, out of the progress handler's reach
      {"SELECT printf('%.*c', 100000000, 'x') FROM vehicles", QueryStatus::Refused, "printf() is not allowed"},
      {"SELECT length(replace(hex(zeroblob(400000)), '0', '00'))", QueryStatus::Stopped, "too big"},
  };
  ASSERT_GE(suite.size(), 30u);

  const std::string before = read_file(db_path());
  const auto listing = folder_listing(dir_.path());
  ExecutorLimits limits;
  limits.timeout_seconds = 0.3;
  SqliteExecutor executor(db_path(), limits);
  for (const auto& h : suite) {
    const auto start = std::chrono::steady_clock::now();
    const QueryOutcome r = executor.run(h.sql);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(query_status_name(r.status), std::string(query_status_name(h.expected))) << h.sql << " → " << r.message;
    EXPECT_NE(r.message.find(h.reason), std::string::npos) << h.sql << " → " << r.message;
    EXPECT_TRUE(r.result.rows.empty()) << h.sql;
    EXPECT_LT(seconds, 3.0) << h.sql << " was not stopped in time";
  }
  // The connection still works after all that.
  const QueryOutcome fine = executor.run("SELECT count(*) FROM vehicles");
  ASSERT_TRUE(fine.ok()) << fine.message;
  EXPECT_EQ(*fine.result.rows[0][0], "300");

  EXPECT_EQ(fnv1a(read_file(db_path())), fnv1a(before)) << "the database file changed";
  EXPECT_EQ(folder_listing(dir_.path()), listing) << "a file appeared or vanished beside the database";
}

TEST_F(SqlGuard, HugeJoinIsCutAtTheRowCapWithANote) {
  ExecutorLimits limits;
  limits.max_rows = 50;
  SqliteExecutor executor(db_path(), limits);
  const QueryOutcome r = executor.run("SELECT a.vehicle_id, b.vehicle_id FROM vehicles a, vehicles b, vehicles c");
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.result.rows.size(), 50u);
  EXPECT_TRUE(r.result.truncated);
  const QueryOutcome small = executor.run("SELECT name FROM stores LIMIT 3");
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small.result.rows.size(), 3u);
  EXPECT_FALSE(small.result.truncated);
}

TEST_F(SqlGuard, ReadOnlyQueriesRunIncludingEveryTemplateFamilysGold) {
  SqliteExecutor executor(db_path(), {});
  // Harmless text that merely looks dangerous is not refused.
  for (const std::string sql :
       {"SELECT '; DELETE FROM vehicles' AS s", "select 1;\n/* done */ ;; -- end",
        "SELECT \"brand\", count(*) FROM vehicles GROUP BY 1 ORDER BY 2 DESC",
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 5) SELECT sum(x) FROM r",
        "SELECT replace(brand, '宝', 'B') FROM vehicles LIMIT 1", "SELECT sql FROM sqlite_master LIMIT 1"}) {
    const QueryOutcome r = executor.run(sql);
    EXPECT_TRUE(r.ok()) << sql << " → " << r.message;
  }
  data::CollectOptions collect;
  collect.per_family = 2;
  const data::SqlDatabase db(db_path());
  const auto examples = data::collect_template_questions(db, collect);
  ASSERT_GT(examples.size(), 10u);
  for (const auto& e : examples) {
    const QueryOutcome r = executor.run(e.sql);
    EXPECT_TRUE(r.ok()) << e.family << ": " << e.sql << " → " << r.message;
  }
}

TEST_F(SqlGuard, SyntaxErrorsAreErrorsNotRefusals) {
  SqliteExecutor executor(db_path(), {});
  const QueryOutcome r = executor.run("SELECT nope FROM vehicles");
  EXPECT_EQ(r.status, QueryStatus::Error);
  EXPECT_EQ(r.message, "no such column: nope");
  EXPECT_EQ(executor.run("SELEC 1").status, QueryStatus::Refused);  // not a SELECT at all
  EXPECT_EQ(executor.run("").status, QueryStatus::Refused);
}

TEST_F(SqlGuard, SchemaAndSamplesComeFromTheLiveDatabase) {
  SqliteExecutor executor(db_path(), {});
  const std::string schema = executor.schema_text();
  EXPECT_NE(schema.find("CREATE TABLE vehicles"), std::string::npos);
  EXPECT_NE(schema.find("CREATE TABLE stores"), std::string::npos);
  const auto samples = executor.text_column_samples(3);
  std::set<std::string> columns;
  for (const auto& s : samples) {
    columns.insert(s.table + "." + s.column);
    EXPECT_LE(s.values.size(), 3u);
    EXPECT_FALSE(s.values.empty()) << s.table << "." << s.column;
  }
  EXPECT_TRUE(columns.count("vehicles.brand"));
  EXPECT_TRUE(columns.count("stores.city"));
  EXPECT_TRUE(columns.count("meta.value"));
  EXPECT_FALSE(columns.count("vehicles.guide_price"));  // REAL, not text
  EXPECT_FALSE(columns.count("vehicles.model_year"));
  // The most frequent brand first: check against a direct count.
  const auto top = data::SqlDatabase(db_path()).query(
      "SELECT brand FROM vehicles GROUP BY brand ORDER BY count(*) DESC, brand LIMIT 1");
  for (const auto& s : samples) {
    if (s.table == "vehicles" && s.column == "brand") {
      EXPECT_EQ(s.values[0], *top.rows[0][0]);
    }
  }
}

TEST(SqlText, TokensLeadingKeywordsAndStatements) {
  EXPECT_EQ(leading_keyword("  -- note\n /* x */ (select 1)"), "SELECT");
  EXPECT_EQ(leading_keyword("with x as (select 1) select * from x"), "WITH");
  EXPECT_EQ(leading_keyword("'DELETE'"), "");
  EXPECT_FALSE(has_second_statement("SELECT 'a;b'; ;"));
  EXPECT_TRUE(has_second_statement("SELECT 1; SELECT 2"));
  EXPECT_FALSE(has_second_statement("SELECT $t$ ; DROP $t$"));  // a PostgreSQL dollar quote
  EXPECT_TRUE(has_second_statement("SELECT E'\\''; DROP TABLE x; --'"));  // E'\'' is one quote
  EXPECT_EQ(called_functions("SELECT upper(x), \"readfile\" (y), count (*) FROM t"),
            (std::vector<std::string>{"UPPER", "READFILE", "COUNT"}));
  EXPECT_EQ(lexical_refusal("SELECT 'insert into' FROM t", {}), "");
  EXPECT_NE(lexical_refusal("SELECT a FROM t WHERE b IN (DELETE FROM t)", {}).find("DELETE"), std::string::npos);
  EXPECT_NE(lexical_refusal("SELECT pg_read_file('/etc/passwd')", {"PG_READ_FILE"}).find("pg_read_file()"),
            std::string::npos);
}

}  // namespace
}  // namespace lathe::agent
