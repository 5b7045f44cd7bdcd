// Format: the answer format and its extraction, the shared system prompt, SFT/GRPO rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "model/chat_template.h"
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

// A formatted SFT row rendered with each chat template, byte for byte (expected strings
// written from the templates: Qwen2.5's ChatML, Llama 3's headers, lathe's Plain), and the
// prompt that selection, evaluation and GRPO rollouts give the model (system + user + the
// generation prompt) is exactly the part of that training text before the answer.
TEST(Format, SftRowRendersByteExactlyWithChatTemplates) {
  Example e{"x-1", "count_brand", "en", "How many BMW cars?", "SELECT COUNT(*) FROM vehicles WHERE brand = '宝马'",
            {{"columns", {"COUNT(*)"}}, {"rows", {{"12"}}}, {"ordered", false}}};
  const std::string answer =
      "<reasoning>\nQuery the vehicles table, filter on brand, aggregate with COUNT.\n</reasoning>\n<answer>\n"
      "SELECT COUNT(*) FROM vehicles WHERE brand = '宝马'\n</answer>\n";
  const nlohmann::json row = sft_row(e, "SYS");
  // The JSONL line itself (keys sorted, UTF-8 unescaped).
  EXPECT_EQ(to_json_line(row),
            R"({"messages":[{"content":"SYS","role":"system"},{"content":"How many BMW cars?","role":"user"},)"
            R"({"content":"<reasoning>\nQuery the vehicles table, filter on brand, aggregate with COUNT.\n</reasoning>)"
            R"(\n<answer>\nSELECT COUNT(*) FROM vehicles WHERE brand = '宝马'\n</answer>\n","role":"assistant"}]})"
            "\n");
  EXPECT_EQ(row["messages"][2]["content"], answer);
  std::vector<ChatMessage> messages;
  for (const auto& m : row["messages"]) messages.push_back({m["role"], m["content"]});
  const std::vector<ChatMessage> prompt(messages.begin(), messages.begin() + 2);

  ChatTemplate chatml;
  chatml.format = ChatFormat::ChatML;
  chatml.eos_text = "<|im_end|>";
  const std::string chatml_prompt =
      "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nHow many BMW cars?<|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(chatml.render(messages, false), chatml_prompt + answer + "<|im_end|>\n");
  EXPECT_EQ(chatml.render(prompt, true), chatml_prompt);

  ChatTemplate llama3;
  llama3.format = ChatFormat::Llama3;
  llama3.bos_text = "<|begin_of_text|>";
  llama3.eos_text = "<|eot_id|>";
  const std::string llama3_prompt =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYS<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nHow many BMW cars?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  // Llama 3's template trims each message, so the answer's final newline goes.
  EXPECT_EQ(llama3.render(messages, false), llama3_prompt + answer.substr(0, answer.size() - 1) + "<|eot_id|>");
  EXPECT_EQ(llama3.render(prompt, true), llama3_prompt);

  ChatTemplate plain;
  plain.eos_text = "</s>";
  const std::string plain_prompt = "<|system|>\nSYS\n<|user|>\nHow many BMW cars?\n<|assistant|>\n";
  EXPECT_EQ(plain.render(messages, false), plain_prompt + answer + "</s>\n");
  EXPECT_EQ(plain.render(prompt, true), plain_prompt);

  // GRPO rows carry the same prompt messages.
  const nlohmann::json grpo = grpo_row(e, "SYS");
  EXPECT_EQ(grpo["prompt"], nlohmann::json(row["messages"].begin(), row["messages"].begin() + 2));
}

}  // namespace
}  // namespace lathe::data
