// `lathe agent eval`'s numbers on a hand-made question file against a scripted endpoint that
// plays two models: every figure (accuracy overall, per family, per language, retries,
// refusals, errors, replies without SQL, tokens) is asserted exactly.
#include <gtest/gtest.h>

#include <map>

#include "agent/eval.h"
#include "agent/sqlite_executor.h"
#include "core/atomic_file.h"
#include "data/example.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "tests/support/fake_openai_server.h"
#include "tests/support/test_support.h"

namespace lathe::agent {
namespace {

using testing::FakeOpenAiServer;
using testing::FakeReply;
using testing::FakeRequest;

std::string sql_reply(const std::string& sql) { return data::format_answer("plan", sql); }

// model → question → reply per attempt.
using Script = std::map<std::string, std::map<std::string, std::vector<std::string>>>;

class Eval : public ::testing::Test {
 protected:
  void SetUp() override {
    data::InventoryDbOptions options;
    options.vehicles = 250;
    data::generate_inventory_db(dir_.file("inventory.sqlite"), options);
  }
  testing::TempDir dir_;
};

const char* kCountBmw = "SELECT count(*) FROM vehicles WHERE brand = '宝马'";
const char* kShanghaiStores = "SELECT name FROM stores WHERE city = '上海'";
const char* kTopModel = "SELECT model FROM vehicles ORDER BY guide_price DESC LIMIT 1";
const char* kAvgPrice = "SELECT avg(guide_price) FROM vehicles";

TEST_F(Eval, FiguresOnAHandMadeQuestionFileAreExact) {
  const std::string db = dir_.file("inventory.sqlite");
  // q5 carries its gold result (as a `lathe data build` split does); the others are run.
  const auto top = data::canonicalize(data::SqlDatabase(db).query(kTopModel), true);
  const std::vector<nlohmann::json> rows = {
      {{"id", "q1"}, {"family", "count_brand"}, {"language", "zh"}, {"question", "宝马有几辆？"}, {"sql", kCountBmw}},
      {{"id", "q2"}, {"family", "count_brand"}, {"question", "How many BMWs?"}, {"sql", kCountBmw}},
      {{"id", "q3"}, {"family", "stores_city"}, {"question", "上海有哪些门店？"}, {"gold_sql", kShanghaiStores}},
      {{"id", "q4"}, {"family", "stores_city"}, {"language", "en"}, {"question", "Which stores are in Shanghai?"},
       {"sql", kShanghaiStores}},
      {{"id", "q5"}, {"family", "top_price"}, {"question", "What is the most expensive model?"}, {"sql", kTopModel},
       {"gold_result", data::canonical_to_json(top)}},
      {{"question", "平均指导价是多少？"}, {"family", "avg_price"}, {"sql", kAvgPrice}},
  };
  std::string text;
  for (const auto& r : rows) text += data::to_json_line(r) + "\n";  // blank lines are skipped
  const std::string questions_path = dir_.file("questions.jsonl");
  write_file_atomic(questions_path, text);

  const Script script = {
      {"base",
       {{"宝马有几辆？", {sql_reply("SELECT count(*) FROM vehicles")}},                      // wrong
        {"How many BMWs?", {"There are some.", "Still no SQL."}},                         // unanswered
        {"上海有哪些门店？", {sql_reply("SELECT name AS store FROM stores WHERE city = '上海'")}},  // alias: right
        {"Which stores are in Shanghai?", {sql_reply("DROP TABLE stores"), sql_reply(kShanghaiStores)}},
        {"What is the most expensive model?", {sql_reply("SELECT price FROM vehicles"), sql_reply("SELECT nope")}},
        {"平均指导价是多少？", {sql_reply("SELECT sum(guide_price) * 1.0 / count(*) FROM vehicles")}}}},
      {"sft",
       {{"宝马有几辆？", {sql_reply(kCountBmw)}},
        {"How many BMWs?", {sql_reply(kCountBmw)}},
        {"上海有哪些门店？", {sql_reply(kShanghaiStores)}},
        {"Which stores are in Shanghai?", {sql_reply(kShanghaiStores)}},
        {"What is the most expensive model?", {sql_reply("SELECT model FROM vehicles ORDER BY guide_price LIMIT 1")}},
        {"平均指导价是多少？", {sql_reply(kAvgPrice)}}}}};
  FakeOpenAiServer server([&](const FakeRequest& r) {
    const auto& messages = r.body["messages"];
    const std::string model = r.body["model"];
    const std::string question = messages[1]["content"];
    const size_t attempt = (messages.size() - 2) / 2;  // each retry adds a reply and the feedback
    const auto& replies = script.at(model).at(question);
    if (attempt >= replies.size()) return testing::fake_error(500, "unscripted attempt");
    return FakeReply{200, testing::fake_chat_reply({replies[attempt]}, 100, 20)};
  });
  OpenAiClientOptions options;
  options.endpoint = server.endpoint();
  const OpenAiClient client(options);

  auto questions = read_eval_questions(questions_path);
  ASSERT_EQ(questions.size(), 6u);
  EXPECT_EQ(questions[1].language, "en");  // detected
  EXPECT_EQ(questions[2].language, "zh");
  EXPECT_EQ(questions[5].id, "q11");       // from its line number
  EXPECT_TRUE(questions[4].gold.has_value());
  EXPECT_FALSE(questions[0].gold.has_value());
  SqliteExecutor executor(db, {});
  prepare_gold(questions, executor);
  AgentConfig config;
  config.max_attempts = 2;
  Tracer tracer;
  std::vector<ModelEval> results;
  for (const std::string model : {"base", "sft"}) {
    Agent agent(client, model, executor, config, tracer);
    results.push_back(evaluate_model(agent, model, questions));
  }

  const ModelEval& base = results[0];
  EXPECT_EQ(base.overall.n, 6);
  EXPECT_EQ(base.overall.correct, 3);
  EXPECT_EQ(base.per_family.at("count_brand").correct, 0);
  EXPECT_EQ(base.per_family.at("count_brand").n, 2);
  EXPECT_EQ(base.per_family.at("stores_city").correct, 2);
  EXPECT_EQ(base.per_family.at("top_price").correct, 0);
  EXPECT_EQ(base.per_family.at("avg_price").correct, 1);
  EXPECT_EQ(base.per_language.at("zh").correct, 2);
  EXPECT_EQ(base.per_language.at("zh").n, 3);
  EXPECT_EQ(base.per_language.at("en").correct, 1);
  EXPECT_EQ(base.questions_retried, 3);
  EXPECT_EQ(base.retries_used, 3);
  EXPECT_EQ(base.guard_refusals, 1);
  EXPECT_EQ(base.sql_errors, 2);
  EXPECT_EQ(base.no_sql, 2);
  EXPECT_EQ(base.stopped, 0);
  EXPECT_EQ(base.unanswered, 2);
  EXPECT_EQ(base.prompt_tokens, 900);  // 9 model calls
  EXPECT_EQ(base.completion_tokens, 180);
  EXPECT_LE(base.latency_p50_ms, base.latency_p90_ms);
  EXPECT_LE(base.latency_p90_ms, base.latency_max_ms);
  EXPECT_EQ(base.items[4].problem, "no such column: nope");
  EXPECT_EQ(base.items[0].sql, "SELECT count(*) FROM vehicles");

  const ModelEval& sft = results[1];
  EXPECT_EQ(sft.overall.correct, 5);
  EXPECT_EQ(sft.per_family.at("top_price").correct, 0);  // ascending: the cheapest
  EXPECT_EQ(sft.retries_used, 0);
  EXPECT_EQ(sft.unanswered, 0);
  EXPECT_EQ(sft.prompt_tokens, 600);

  const std::string table = eval_markdown(results);
  EXPECT_EQ(table.rfind("| metric | base | sft |\n|---|---|---|\n", 0), 0u) << table;
  for (const std::string line :
       {"| execution accuracy | 50.0% (3/6) | 83.3% (5/6) |", "| family avg_price | 100.0% (1/1) | 100.0% (1/1) |",
        "| family count_brand | 0.0% (0/2) | 100.0% (2/2) |", "| family stores_city | 100.0% (2/2) | 100.0% (2/2) |",
        "| family top_price | 0.0% (0/1) | 0.0% (0/1) |", "| language en | 33.3% (1/3) | 66.7% (2/3) |",
        "| language zh | 66.7% (2/3) | 100.0% (3/3) |", "| questions retried | 3 | 0 |", "| retries used | 3 | 0 |",
        "| guard refusals | 1 | 0 |", "| SQL errors | 2 | 0 |", "| replies without SQL | 2 | 0 |",
        "| unanswered | 2 | 0 |", "| tokens prompt / completion | 900 / 180 | 600 / 120 |"}) {
    EXPECT_NE(table.find(line + "\n"), std::string::npos) << line << "\n" << table;
  }

  const nlohmann::json json = eval_to_json(results);
  ASSERT_EQ(json["models"].size(), 2u);
  EXPECT_EQ(json["models"][0]["model"], "base");
  EXPECT_DOUBLE_EQ(json["models"][0]["execution_accuracy"].get<double>(), 0.5);
  EXPECT_EQ(json["models"][0]["per_language"]["en"], nlohmann::json({{"n", 3}, {"correct", 1}, {"accuracy", 1.0 / 3}}));
  EXPECT_EQ(json["models"][0]["guard_refusals"], 1);
  EXPECT_EQ(json["models"][1]["correct"], 5);
  EXPECT_EQ(json["models"][0]["items"].size(), 6u);
  EXPECT_EQ(json["models"][0]["items"][3]["refusals"], 1);
  EXPECT_EQ(json["models"][0]["items"][3]["correct"], true);
}

TEST_F(Eval, BadQuestionFilesNameTheLineAndField) {
  auto error_of = [&](const std::string& text) {
    const std::string path = dir_.file("bad.jsonl");
    write_file_atomic(path, text);
    try {
      read_eval_questions(path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string path = dir_.file("bad.jsonl");
  EXPECT_EQ(error_of("{\"question\": \"q\", \"sql\": \"SELECT 1\"}\n{\"question\": \"q\"}\n"),
            path + ":2: missing \"sql\" (the gold query; \"gold_sql\" works too)");
  EXPECT_EQ(error_of("{\"sql\": \"SELECT 1\"}\n"), path + ":1: missing \"question\"");
  EXPECT_EQ(error_of("{\"question\": \"q\", \"sql\": \"SELECT 1\", \"language\": \"fr\"}\n"),
            path + ":1: \"language\" must be zh or en");
  EXPECT_EQ(error_of("{\"question\": 3, \"sql\": \"SELECT 1\"}\n"), path + ":1: \"question\" must be a string");
  EXPECT_NE(error_of("not json\n").find(path + ":1: invalid JSON"), std::string::npos);
  EXPECT_EQ(error_of("\n"), path + ": no questions");

  write_file_atomic(path, "{\"question\": \"q\", \"sql\": \"SELECT nope FROM vehicles\"}\n");
  auto questions = read_eval_questions(path);
  SqliteExecutor executor(dir_.file("inventory.sqlite"), {});
  try {
    prepare_gold(questions, executor);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ":1: the gold SQL did not run: no such column: nope");
  }
}

}  // namespace
}  // namespace lathe::agent
