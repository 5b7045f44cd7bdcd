// Read-only execution, limits, and the canonical result comparison rules.
#include <gtest/gtest.h>

#include <algorithm>

#include "data/inventory_db.h"
#include "data/sql_exec.h"
#include "tests/support/test_support.h"

namespace lathe::data {
namespace {

class SqlExecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InventoryDbOptions options;
    options.vehicles = 200;
    generate_inventory_db(dir_.file("db.sqlite"), options);
    db_ = std::make_unique<SqlDatabase>(dir_.file("db.sqlite"));
  }
  CanonicalResult run(const std::string& sql) {
    return canonicalize(db_->query(sql), has_top_level_order_by(sql));
  }
  testing::TempDir dir_;
  std::unique_ptr<SqlDatabase> db_;
};

TEST_F(SqlExecTest, ReturnsColumnsRowsAndNulls) {
  const SqlResult r = db_->query("SELECT 1 AS a, 'x' AS b, NULL AS c, 2.5 AS d");
  EXPECT_EQ(r.columns, (std::vector<std::string>{"a", "b", "c", "d"}));
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0][0], "1");
  EXPECT_EQ(r.rows[0][1], "x");
  EXPECT_FALSE(r.rows[0][2].has_value());
  EXPECT_EQ(r.rows[0][3], "2.5");
}

TEST_F(SqlExecTest, RefusesWritesAndSecondStatements) {
  EXPECT_THROW(db_->query("DELETE FROM vehicles"), SqlError);
  EXPECT_THROW(db_->query("SELECT 1; SELECT 2"), SqlError);
  EXPECT_THROW(db_->query("SELEC 1"), SqlError);
  EXPECT_NO_THROW(db_->query("SELECT 1; -- trailing comment"));
  EXPECT_EQ(db_->query("SELECT COUNT(*) FROM vehicles").rows[0][0], "200");
}

TEST_F(SqlExecTest, RowCapTruncates) {
  SqlLimits limits;
  limits.max_rows = 5;
  const SqlResult r = db_->query("SELECT vehicle_id FROM vehicles", limits);
  EXPECT_EQ(r.rows.size(), 5u);
  EXPECT_TRUE(r.truncated);
  EXPECT_FALSE(db_->query("SELECT vehicle_id FROM vehicles LIMIT 5", limits).truncated);
}

TEST_F(SqlExecTest, TimeLimitInterrupts) {
  SqlLimits limits;
  limits.timeout_seconds = 0.2;
  const std::string slow =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c";
  try {
    db_->query(slow, limits);
    FAIL() << "expected a timeout";
  } catch (const SqlError& e) {
    EXPECT_NE(std::string(e.what()).find("time limit"), std::string::npos) << e.what();
  }
  EXPECT_EQ(db_->query("SELECT 1").rows[0][0], "1");  // the connection stays usable
}

// The tokenizer's whole-piece names: a column's non-ASCII values when it has few enough.
TEST_F(SqlExecTest, CategoricalTextValuesKeepsTheNamesOfColumnsWithFewValues) {
  const auto has = [](const std::vector<std::string>& values, const std::string& v) {
    return std::find(values.begin(), values.end(), v) != values.end();
  };
  const std::vector<std::string> few = db_->categorical_text_values(8);
  EXPECT_TRUE(has(few, "白色"));   // vehicles.color: 8 values
  EXPECT_TRUE(has(few, "华东"));   // stores.region: 6 values
  EXPECT_FALSE(has(few, "宝马"));  // vehicles.brand: 14 values, past the bound
  EXPECT_FALSE(has(few, "上海"));  // stores.city: 12 values
  EXPECT_FALSE(has(few, "sedan"));  // ASCII values tokenize the same everywhere already
  EXPECT_TRUE(std::is_sorted(few.begin(), few.end()));
  const std::vector<std::string> many = db_->categorical_text_values(64);
  for (const std::string v : {"宝马", "上海", "凯美瑞", "白色", "华东"}) EXPECT_TRUE(has(many, v)) << v;
  EXPECT_EQ(std::adjacent_find(many.begin(), many.end()), many.end());  // no repeats
}

TEST(SqlCanonical, NormalisesNumbers) {
  EXPECT_EQ(normalize_cell("3"), "3");
  EXPECT_EQ(normalize_cell("3.0"), "3");
  EXPECT_EQ(normalize_cell("3e0"), "3");
  EXPECT_EQ(normalize_cell("2.50"), "2.5");
  EXPECT_EQ(normalize_cell("0.30000000000000004"), "0.3");
  EXPECT_EQ(normalize_cell("253456.78912"), "253456.79");
  EXPECT_EQ(normalize_cell("2.99999999999"), "3");
  EXPECT_EQ(normalize_cell("宝马"), "宝马");
  EXPECT_EQ(normalize_cell("2024-03-01"), "2024-03-01");
  EXPECT_EQ(normalize_cell("nan"), "nan");
  EXPECT_EQ(normalize_cell(" 3"), " 3");
  EXPECT_EQ(normalize_cell(""), "");
  EXPECT_EQ(normalize_cell("0x1A"), "0x1A");
}

TEST(SqlCanonical, DetectsTopLevelOrderBy) {
  EXPECT_TRUE(has_top_level_order_by("SELECT a FROM t ORDER BY a"));
  EXPECT_TRUE(has_top_level_order_by("select a from t order\n  by a desc limit 3"));
  EXPECT_FALSE(has_top_level_order_by("SELECT a FROM t"));
  EXPECT_FALSE(has_top_level_order_by("SELECT a FROM (SELECT a FROM t ORDER BY a LIMIT 3)"));
  EXPECT_FALSE(has_top_level_order_by("SELECT 'ORDER BY' FROM t"));
  EXPECT_FALSE(has_top_level_order_by("SELECT a FROM t -- ORDER BY a"));
  EXPECT_FALSE(has_top_level_order_by("SELECT border_by FROM t"));
}

TEST_F(SqlExecTest, ComparisonRules) {
  // Order-insensitive without ORDER BY, column names ignored, 3 vs 3.0 equal.
  EXPECT_TRUE(results_match(run("SELECT 1 AS a UNION ALL SELECT 2"), run("SELECT 2 AS b UNION ALL SELECT 1.0")));
  // With ORDER BY in gold, order matters.
  const auto gold = run("SELECT brand, COUNT(*) AS n FROM vehicles GROUP BY brand ORDER BY n DESC, brand");
  EXPECT_TRUE(results_match(gold, run("SELECT brand, COUNT(*) FROM vehicles GROUP BY brand ORDER BY COUNT(*) DESC, brand")));
  EXPECT_FALSE(results_match(gold, run("SELECT brand, COUNT(*) FROM vehicles GROUP BY brand ORDER BY brand DESC")));
  // Multisets: duplicates count.
  EXPECT_FALSE(results_match(run("SELECT 1 UNION ALL SELECT 1"), run("SELECT 1")));
  // Column count matters.
  EXPECT_FALSE(results_match(run("SELECT 1, 2"), run("SELECT 1")));
  // Float summation order does not.
  EXPECT_TRUE(results_match(run("SELECT AVG(guide_price) FROM vehicles"),
                            run("SELECT SUM(guide_price) / COUNT(*) FROM vehicles")));
  // NULL differs from 0 and from 'NULL'.
  EXPECT_FALSE(results_match(run("SELECT NULL"), run("SELECT 0")));
  EXPECT_FALSE(results_match(run("SELECT NULL"), run("SELECT 'NULL'")));
}

TEST_F(SqlExecTest, CanonicalJsonRoundTrips) {
  const auto c = run("SELECT brand, AVG(guide_price), NULL FROM vehicles GROUP BY brand ORDER BY brand");
  const auto j = canonical_to_json(c);
  EXPECT_TRUE(j["ordered"].get<bool>());
  const auto back = canonical_from_json(j);
  EXPECT_EQ(back.rows, c.rows);
  EXPECT_EQ(back.columns, c.columns);
  EXPECT_TRUE(results_match(back, c));
  EXPECT_THROW(canonical_from_json(nlohmann::json::object()), Error);
}

}  // namespace
}  // namespace lathe::data
