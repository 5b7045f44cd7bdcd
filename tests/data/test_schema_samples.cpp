// The live-schema rendering the agent's prompt uses (data/format.h): sample lines after the
// DDL, values quoted as SQL literals and cut whole-character, and the dialect variant of the
// shared system prompt equal to the SQLite one for "SQLite".
#include <gtest/gtest.h>

#include "data/format.h"
#include "data/inventory_db.h"

namespace lathe::data {
namespace {

TEST(SchemaWithSamples, AppendsOneCommentLinePerSampledColumn) {
  const std::string out = schema_with_samples(
      "CREATE TABLE t(a TEXT);", {{"t", "a", {"宝马", "it's"}}, {"t", "b", {}}, {"u", "c", {"x\ny"}}});
  EXPECT_EQ(out,
            "CREATE TABLE t(a TEXT);\n-- Some stored values per text column:\n-- t.a: '宝马', 'it''s'\n-- u.c: 'x y'\n");
  EXPECT_EQ(schema_with_samples("CREATE TABLE t(a);\n", {}), "CREATE TABLE t(a);\n");
  // 40 bytes at most per value, never splitting a UTF-8 character (宝 is 3 bytes).
  std::string long_value;
  for (int i = 0; i < 20; ++i) long_value += "宝";
  const std::string cut = schema_with_samples("", {{"t", "a", {long_value}}});
  std::string expected_value;
  for (int i = 0; i < 13; ++i) expected_value += "宝";
  EXPECT_NE(cut.find("-- t.a: '" + expected_value + "…'\n"), std::string::npos) << cut;
}

TEST(SchemaWithSamples, DialectPromptKeepsTheSqlitePromptExact) {
  const std::string& schema = inventory_schema_sql();
  EXPECT_EQ(inventory_system_prompt(schema), inventory_system_prompt(schema, "SQLite"));
  const std::string pg = inventory_system_prompt(schema, "PostgreSQL");
  EXPECT_NE(pg.find("answer each with one PostgreSQL SELECT query over this schema"), std::string::npos);
  EXPECT_EQ(pg.find("SQLite"), std::string::npos);
}

}  // namespace
}  // namespace lathe::data
