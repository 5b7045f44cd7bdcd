// Format: the answer format and its extraction, the shared system prompt, SFT/GRPO rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "tests/support/test_support.h"

namespace lathe::data {
namespace {

TEST(Format, AnswerFormatIsExact) {
  EXPECT_EQ(format_answer("plan", "SELECT 1"),
            "<reasoning>\nplan\n</reasoning>\n<answer>\nSELECT 1\n</answer>\n");
  // It matches the strict XML format reward's pattern (DOTALL).
  const std::string answer = format_answer("line one\nline two", "SELECT COUNT(*)\nFROM vehicles");
  std::regex strict(R"(^<reasoning>\n[\s\S]*?\n</reasoning>\n<answer>\n[\s\S]*?\n</answer>\n$)");
  EXPECT_TRUE(std::regex_match(answer, strict));
}

TEST(Format, ExtractAnswerSql) {
  EXPECT_EQ(extract_answer_sql(format_answer("r", "SELECT 1")), "SELECT 1");
  EXPECT_EQ(extract_answer_sql("<answer>  SELECT 2;  </answer>"), "SELECT 2");
  EXPECT_EQ(extract_answer_sql("<answer>\n```sql\nSELECT 3\n```\n</answer>"), "SELECT 3");
  // The last complete block wins; a truncated final block falls back to the previous one.
  EXPECT_EQ(extract_answer_sql("<reasoning>draft <answer>SELECT 0</answer></reasoning>\n<answer>\nSELECT 4\n</answer>"),
            "SELECT 4");
  EXPECT_EQ(extract_answer_sql("<answer>SELECT 5</answer> then <answer>SELECT 6"), "SELECT 5");
  EXPECT_EQ(extract_answer_sql("SELECT 7"), std::nullopt);
  EXPECT_EQ(extract_answer_sql("<answer>SELECT 8"), std::nullopt);
  EXPECT_EQ(extract_answer_sql("<answer>\n \n</answer>"), std::nullopt);
  EXPECT_EQ(extract_answer_sql(""), std::nullopt);
}

TEST(Format, SystemPromptHoldsSchemaAndFormat) {
  const std::string prompt = inventory_system_prompt(inventory_schema_sql());
  EXPECT_NE(prompt.find(inventory_schema_sql()), std::string::npos);
  EXPECT_NE(prompt.find("<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>"), std::string::npos);
  EXPECT_NE(prompt.find("as_of_date"), std::string::npos);
}

TEST(Format, PlanSentenceFollowsLanguage) {
  const std::string sql =
      "SELECT AVG(v.guide_price) FROM vehicles v JOIN stores s ON v.store_id = s.store_id "
      "WHERE s.city = '上海' AND v.body_type = 'suv' AND v.status = 'in_stock'";
  EXPECT_EQ(describe_sql_plan(sql, "en"),
            "Query the vehicles, stores tables, filter on city, body_type, status, aggregate with AVG.");
  EXPECT_EQ(describe_sql_plan(sql, "zh"), "查询 vehicles、stores 表，按 city、body_type、status 筛选，用 AVG 汇总。");
  const std::string age =
      "SELECT AVG(julianday((SELECT value FROM meta WHERE key = 'as_of_date')) - julianday(pickup_date)) "
      "FROM vehicles WHERE brand = '丰田' AND status = 'in_stock'";
  EXPECT_EQ(describe_sql_plan(age, "en"),
            "Query the meta, vehicles tables, filter on brand, status, days in stock = meta.as_of_date - "
            "pickup_date, aggregate with AVG.");
  EXPECT_EQ(describe_sql_plan("SELECT brand, COUNT(*) AS n FROM vehicles GROUP BY brand ORDER BY n DESC LIMIT 3", "en"),
            "Query the vehicles table, group by brand, aggregate with COUNT, keep the first 3.");
}

TEST(Format, SftAndGrpoRows) {
  Example e{"x-1", "count_brand", "zh", "宝马有几辆？", "SELECT COUNT(*) FROM vehicles WHERE brand = '宝马'",
            {{"columns", {"COUNT(*)"}}, {"rows", {{"12"}}}, {"ordered", false}}};
  const auto sft = sft_row(e, "SYS");
  ASSERT_EQ(sft.size(), 1u);
  ASSERT_EQ(sft["messages"].size(), 3u);
  EXPECT_EQ(sft["messages"][0]["role"], "system");
  EXPECT_EQ(sft["messages"][0]["content"], "SYS");
  EXPECT_EQ(sft["messages"][1]["role"], "user");
  EXPECT_EQ(sft["messages"][1]["content"], "宝马有几辆？");
  EXPECT_EQ(sft["messages"][2]["role"], "assistant");
  EXPECT_EQ(sft["messages"][2]["content"],
            "<reasoning>\n查询 vehicles 表，按 brand 筛选，用 COUNT 汇总。\n</reasoning>\n<answer>\n"
            "SELECT COUNT(*) FROM vehicles WHERE brand = '宝马'\n</answer>\n");
  EXPECT_EQ(extract_answer_sql(sft["messages"][2]["content"].get<std::string>()), e.sql);

  const auto grpo = grpo_row(e, "SYS");
  EXPECT_EQ(grpo["prompt"].size(), 2u);
  EXPECT_EQ(grpo["prompt"][1]["content"], e.question);
  EXPECT_EQ(grpo["gold_sql"], e.sql);
  EXPECT_EQ(grpo["gold_result"]["rows"][0][0], "12");
  EXPECT_EQ(grpo["family"], "count_brand");
  EXPECT_EQ(grpo["language"], "zh");
  e.gold_result = nullptr;
  EXPECT_THROW(grpo_row(e, "SYS"), Error);

  testing::TempDir dir;
  e.gold_result = {{"columns", {"c"}}, {"rows", {{"1"}}}, {"ordered", false}};
  write_sft_jsonl(dir.file("sft.jsonl"), {e, e}, "SYS");
  const std::string text = read_file(dir.file("sft.jsonl"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  EXPECT_NE(text.find("宝马"), std::string::npos);  // UTF-8 kept, not \u-escaped
}

}  // namespace
}  // namespace lathe::data
