// The agent loop against a scripted OpenAI-compatible endpoint: the prompt it sends, retry
// after an SQL error / a refusal / a reply without SQL with the problem fed back, the answer
// in the question's language, model-phrased answers, chat history, the JSON-lines run tree,
// and endpoint failures.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>

#include "agent/agent.h"
#include "agent/answer.h"
#include "agent/sqlite_executor.h"
#include "core/atomic_file.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "tests/support/fake_openai_server.h"
#include "tests/support/test_support.h"

namespace lathe::agent {
namespace {

using testing::FakeOpenAiServer;
using testing::FakeReply;
using testing::FakeRequest;

std::string reply_with_sql(const std::string& sql) {
  return data::format_answer("Count the matching vehicles.", sql);
}

// Replies with script[i] to the i-th chat request; 500 once the script runs out.
class ScriptedEndpoint {
 public:
  explicit ScriptedEndpoint(std::vector<std::string> script)
      : script_(std::move(script)), server_([this](const FakeRequest& r) {
          if (r.path != "/v1/chat/completions") return FakeReply{404, "{}"};
          const size_t i = next_++;
          if (i >= script_.size()) return testing::fake_error(500, "script exhausted");
          return FakeReply{200, testing::fake_chat_reply({script_[i]}, 100, 20)};
        }) {}
  std::vector<FakeRequest> chats() const { return server_.requests(); }
  OpenAiClient client() const {
    OpenAiClientOptions o;
    o.endpoint = server_.endpoint();
    return OpenAiClient(o);
  }

 private:
  std::vector<std::string> script_;
  std::atomic<size_t> next_{0};
  FakeOpenAiServer server_;
};

class AgentLoop : public ::testing::Test {
 protected:
  void SetUp() override {
    data::InventoryDbOptions options;
    options.vehicles = 200;
    data::generate_inventory_db(db_path(), options);
  }
  std::string db_path() const { return dir_.file("inventory.sqlite"); }
  std::string scalar(const std::string& sql) const {
    return *data::SqlDatabase(db_path()).query(sql).rows.at(0).at(0);
  }
  testing::TempDir dir_;
};

const std::string kGoodSql = "SELECT count(*) FROM vehicles WHERE brand = '宝马' AND status = 'in_stock'";

TEST_F(AgentLoop, RetriesAfterAnSqlErrorWithTheErrorFedBack) {
  ScriptedEndpoint endpoint({reply_with_sql("SELECT count(*) FROM vehicle WHERE brand = '宝马'"), reply_with_sql(kGoodSql)});
  const OpenAiClient client = endpoint.client();
  SqliteExecutor executor(db_path(), {});
  Tracer tracer;
  AgentConfig config;
  config.max_tokens = 300;
  Agent agent(client, "inventory", executor, config, tracer);
  const AgentAnswer a = agent.ask("宝马有几辆在库？");

  ASSERT_TRUE(a.ok);
  ASSERT_EQ(a.attempts.size(), 2u);
  EXPECT_EQ(a.attempts[0].status, "error");
  EXPECT_EQ(a.attempts[0].message, "no such table: vehicle");
  EXPECT_EQ(a.attempts[1].status, "ok");
  EXPECT_EQ(a.sql, kGoodSql);
  const std::string expected = scalar(kGoodSql);
  ASSERT_EQ(a.result.rows.size(), 1u);
  EXPECT_EQ(*a.result.rows[0][0], expected);
  EXPECT_EQ(a.language, "zh");
  EXPECT_EQ(a.answer, "查询结果是 " + expected + "。");
  EXPECT_EQ(a.answer_method, "template");
  EXPECT_EQ(a.usage.prompt_tokens, 200);
  EXPECT_EQ(a.usage.completion_tokens, 40);

  const auto requests = endpoint.chats();
  ASSERT_EQ(requests.size(), 2u);
  const auto& first = requests[0].body;
  EXPECT_EQ(first["model"], "inventory");
  EXPECT_EQ(first["max_tokens"], 300);
  EXPECT_EQ(first["temperature"], 0.0);
  ASSERT_EQ(first["messages"].size(), 2u);
  EXPECT_EQ(first["messages"][0]["role"], "system");
  EXPECT_EQ(first["messages"][0]["content"], agent.system_prompt());
  EXPECT_EQ(first["messages"][1]["content"], "宝马有几辆在库？");
  // The retry carries the failed reply and the database's own error message.
  const auto& second = requests[1].body["messages"];
  ASSERT_EQ(second.size(), 4u);
  EXPECT_EQ(second[2]["role"], "assistant");
  EXPECT_EQ(second[2]["content"], a.attempts[0].completion);
  EXPECT_EQ(second[3]["role"], "user");
  EXPECT_NE(second[3]["content"].get<std::string>().find("The query failed: no such table: vehicle"), std::string::npos);
}

TEST_F(AgentLoop, SystemPromptIsTheSharedOneOverTheLiveSchemaWithSamples) {
  ScriptedEndpoint endpoint({});
  const OpenAiClient client = endpoint.client();
  SqliteExecutor executor(db_path(), {});
  Tracer tracer;
  AgentConfig config;
  config.samples_per_column = 2;
  Agent agent(client, "m", executor, config, tracer);
  EXPECT_EQ(agent.system_prompt(),
            data::inventory_system_prompt(data::schema_with_samples(executor.schema_text(), executor.text_column_samples(2)),
                                          "SQLite"));
  const std::string top_brand =
      scalar("SELECT brand FROM vehicles GROUP BY brand ORDER BY count(*) DESC, brand LIMIT 1");
  EXPECT_NE(agent.system_prompt().find("-- vehicles.brand: '" + top_brand + "'"), std::string::npos);
  EXPECT_NE(agent.system_prompt().find("<answer>\n...\n</answer>"), std::string::npos);
}

// The pipeline's serve stage asks with the exact prompt its tiny model was trained on.
TEST_F(AgentLoop, AGivenSystemPromptReplacesTheLiveOneAndReachesTheModel) {
  ScriptedEndpoint endpoint({reply_with_sql(kGoodSql)});
  const OpenAiClient client = endpoint.client();
  SqliteExecutor executor(db_path(), {});
  Tracer tracer;
  AgentConfig config;
  config.system_prompt = data::inventory_system_prompt(data::inventory_schema_sql());
  Agent agent(client, "m", executor, config, tracer);
  EXPECT_EQ(agent.system_prompt(), config.system_prompt);
  EXPECT_TRUE(agent.ask("宝马在库几辆？").ok);
  const auto chats = endpoint.chats();
  ASSERT_EQ(chats.size(), 1u);
  const nlohmann::json& body = chats[0].body;
  EXPECT_EQ(body["messages"][0]["role"], "system");
  EXPECT_EQ(body["messages"][0]["content"], config.system_prompt);
  EXPECT_EQ(body["messages"][1]["content"], "宝马在库几辆？");
}

TEST_F(AgentLoop, RefusalIsFedBackAndTheDatabaseIsUntouched) {
  const std::string before = read_file(db_path());
  ScriptedEndpoint endpoint({reply_with_sql("DELETE FROM vehicles"), reply_with_sql("SELECT 1; DROP TABLE stores"),
                             reply_with_sql("SELECT count(*) FROM stores")});
  const OpenAiClient client = endpoint.client();
  SqliteExecutor executor(db_path(), {});
  Tracer tracer;
  Agent agent(client, "m", executor, AgentConfig{}, tracer);
  const AgentAnswer a = agent.ask("How many stores are there?");
  ASSERT_TRUE(a.ok);
  ASSERT_EQ(a.attempts.size(), 3u);
  EXPECT_EQ(a.attempts[0].status, "refused");
  EXPECT_EQ(a.attempts[1].status, "refused");
  EXPECT_EQ(a.answer, "The answer is " + scalar("SELECT count(*) FROM stores") + ".");
  const auto feedback = endpoint.chats()[1].body["messages"][3]["content"].get<std::string>();
  EXPECT_NE(feedback.find("The query was refused: only SELECT or WITH"), std::string::npos) << feedback;
  EXPECT_EQ(read_file(db_path()), before);
}

TEST_F(AgentLoop, GivesUpAfterMaxAttemptsWithoutSql) {
  ScriptedEndpoint endpoint({"I think there are many cars.", "<answer>\n\n</answer>", "never asked"});
  const OpenAiClient client = endpoint.client();
  SqliteExecutor executor(db_path(), {});
  Tracer tracer;
  AgentConfig config;
  config.max_attempts = 2;
  Agent agent(client, "m", executor, config, tracer);
  const AgentAnswer a = agent.ask("How many BMWs?");
  EXPECT_FALSE(a.ok);
  ASSERT_EQ(a.attempts.size(), 2u);
  EXPECT_EQ(a.attempts[0].status, "no_sql");
  EXPECT_EQ(a.attempts[1].status, "no_sql");
  EXPECT_EQ(a.answer_method, "failure");
  EXPECT_EQ(a.answer, "Sorry, I could not write a query that runs (no <answer> block with SQL in the reply).");
  EXPECT_EQ(endpoint.chats().size(), 2u);
  EXPECT_NE(endpoint.chats()[1].body["messages"][3]["content"].get<std::string>().find("no <answer> block"),
            std::string::npos);
}

TEST_F(AgentLoop, StoppedQueryIsFedBackAsTooExpensive) {
  ScriptedEndpoint endpoint({reply_with_sql("SELECT count(*) FROM vehicles a, vehicles b, vehicles c, vehicles d"),
                             reply_with_sql("SELECT count(*) FROM vehicles")});
  const OpenAiClient client = endpoint.client();
  AgentConfig config;
  config.limits.timeout_seconds = 0.2;
  SqliteExecutor executor(db_path(), config.limits);
  Tracer tracer;
  Agent agent(client, "m", executor, config, tracer);
  const AgentAnswer a = agent.ask("How many vehicles?");
  ASSERT_TRUE(a.ok);
  EXPECT_EQ(a.attempts[0].status, "stopped");
  EXPECT_NE(endpoint.chats()[1].body["messages"][3]["content"].get<std::string>().find("Write a cheaper query"),
            std::string::npos);
}

TEST_F(AgentLoop, ModelPhrasedAnswerAndChatHistory) {
  ScriptedEndpoint endpoint({reply_with_sql(kGoodSql), "上海有 3 辆宝马在库。"});
  const OpenAiClient client = endpoint.client();
  SqliteExecutor executor(db_path(), {});
  Tracer tracer;
  AgentConfig config;
  config.answer_with_model = true;
  Agent agent(client, "m", executor, config, tracer);
  const std::vector<ChatTurn> history = {{"奔驰有几辆？", reply_with_sql("SELECT count(*) FROM vehicles WHERE brand = '奔驰'")}};
  const AgentAnswer a = agent.ask("那宝马呢？", history);
  ASSERT_TRUE(a.ok);
  EXPECT_EQ(a.answer, "上海有 3 辆宝马在库。");
  EXPECT_EQ(a.answer_method, "model");
  const auto requests = endpoint.chats();
  ASSERT_EQ(requests.size(), 2u);
  const auto& asked = requests[0].body["messages"];
  ASSERT_EQ(asked.size(), 4u);  // system, earlier question, earlier reply, question
  EXPECT_EQ(asked[1]["content"], "奔驰有几辆？");
  EXPECT_EQ(asked[2]["role"], "assistant");
  EXPECT_EQ(asked[3]["content"], "那宝马呢？");
  const auto& phrase = requests[1].body["messages"];
  EXPECT_NE(phrase[0]["content"].get<std::string>().find("Reply in Chinese"), std::string::npos);
  const std::string user = phrase[1]["content"];
  EXPECT_NE(user.find("Question: 那宝马呢？"), std::string::npos);
  EXPECT_NE(user.find("SQL: " + kGoodSql), std::string::npos);
  EXPECT_NE(user.find("count(*)\n" + scalar(kGoodSql) + "\n"), std::string::npos) << user;
  EXPECT_EQ(a.turn().question, "那宝马呢？");
  EXPECT_EQ(a.turn().completion, reply_with_sql(kGoodSql));
}

TEST_F(AgentLoop, TraceIsARunTreeWithEveryStep) {
  const std::string trace_path = dir_.file("trace.jsonl");
  ScriptedEndpoint endpoint({reply_with_sql("DROP TABLE vehicles"), reply_with_sql(kGoodSql)});
  const OpenAiClient client = endpoint.client();
  SqliteExecutor executor(db_path(), {});
  Tracer tracer(trace_path);
  Agent agent(client, "inventory", executor, AgentConfig{}, tracer);
  const AgentAnswer a = agent.ask("宝马有几辆在库？");
  ASSERT_TRUE(a.ok);

  std::ifstream in(trace_path);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  std::vector<std::string> steps;
  for (const auto& r : records) steps.push_back(r["step"]);
  // Attempt 1 is refused (no execute step), attempt 2 runs.
  EXPECT_EQ(steps, (std::vector<std::string>{"llm", "extract", "guard", "llm", "extract", "guard", "execute", "answer",
                                             "agent"}));
  const auto& root = records.back();
  EXPECT_TRUE(root["parent_run_id"].is_null());
  EXPECT_EQ(root["run_id"], a.run_id);
  EXPECT_EQ(root["trace_id"], a.run_id);
  EXPECT_EQ(root["inputs"]["question"], "宝马有几辆在库？");
  EXPECT_EQ(root["outputs"]["ok"], true);
  EXPECT_EQ(root["outputs"]["attempts"], 2);
  EXPECT_EQ(root["tokens"]["total"], 240);
  std::set<std::string> ids;
  for (const auto& r : records) {
    EXPECT_TRUE(ids.insert(r["run_id"].get<std::string>()).second) << "duplicate run id";
    EXPECT_EQ(r["run_id"].get<std::string>().size(), 36u);
    EXPECT_EQ(r["trace_id"], a.run_id);
    if (&r != &root) {
      EXPECT_EQ(r["parent_run_id"], a.run_id);
    }
    EXPECT_GE(r["latency_ms"].get<double>(), 0.0);
    EXPECT_EQ(r["start_time"].get<std::string>().size(), 24u);  // 2024-06-30T12:34:56.789Z
    EXPECT_EQ(r["end_time"].get<std::string>().back(), 'Z');
  }
  const auto& llm = records[0];
  EXPECT_EQ(llm["attempt"], 1);
  EXPECT_EQ(llm["inputs"]["messages"][0]["content"], agent.system_prompt());
  EXPECT_EQ(llm["outputs"]["completion"], a.attempts[0].completion);
  EXPECT_EQ(llm["tokens"], nlohmann::json({{"prompt", 100}, {"completion", 20}, {"total", 120}}));
  EXPECT_EQ(records[1]["outputs"]["sql"], "DROP TABLE vehicles");
  EXPECT_EQ(records[2]["outputs"]["decision"], "refused");
  EXPECT_NE(records[2]["outputs"]["reason"].get<std::string>().find("starts with DROP"), std::string::npos);
  EXPECT_EQ(records[5]["outputs"]["decision"], "allowed");
  EXPECT_EQ(records[5]["attempt"], 2);
  EXPECT_EQ(records[6]["outputs"]["status"], "ok");
  EXPECT_EQ(records[6]["outputs"]["row_count"], 1);
  EXPECT_EQ(records[6]["outputs"]["rows"][0][0], scalar(kGoodSql));
  EXPECT_EQ(records[7]["outputs"]["answer"], a.answer);

  // A second question appends a second tree.
  ScriptedEndpoint again({reply_with_sql(kGoodSql)});
  const OpenAiClient client2 = again.client();
  Agent agent2(client2, "inventory", executor, AgentConfig{}, tracer);
  agent2.ask("again");
  std::ifstream in2(trace_path);
  int lines = 0;
  for (std::string line; std::getline(in2, line);) ++lines;
  EXPECT_EQ(lines, 9 + 6);
}

TEST_F(AgentLoop, EndpointFailureIsAnErrorAndIsTraced) {
  const std::string trace_path = dir_.file("trace.jsonl");
  FakeOpenAiServer server([](const FakeRequest&) { return testing::fake_error(404, "The model `m` does not exist."); });
  OpenAiClientOptions o;
  o.endpoint = server.endpoint();
  const OpenAiClient client(o);
  SqliteExecutor executor(db_path(), {});
  Tracer tracer(trace_path);
  Agent agent(client, "m", executor, AgentConfig{}, tracer);
  try {
    agent.ask("How many?");
    FAIL() << "expected an error";
  } catch (const OpenAiError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_NE(std::string(e.what()).find("The model `m` does not exist."), std::string::npos);
  }
  std::ifstream in(trace_path);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["step"], "llm");
  EXPECT_NE(records[0]["error"].get<std::string>().find("HTTP 404"), std::string::npos);
  EXPECT_EQ(records[1]["step"], "agent");
  EXPECT_FALSE(records[1]["error"].is_null());
}

TEST(AgentAnswerText, TemplatesInBothLanguages) {
  data::SqlResult none{{"n"}, {}, false};
  EXPECT_EQ(template_answer(none, "zh", 10, 200), "没有查到符合条件的记录。");
  EXPECT_EQ(template_answer(none, "en", 10, 200), "No matching records were found.");
  data::SqlResult avg{{"avg(guide_price)"}, {{std::string("346789.12345678901")}}, false};
  EXPECT_EQ(template_answer(avg, "en", 10, 200), "The answer is 346789.12.");
  data::SqlResult one{{"brand", "n"}, {{std::string("宝马"), std::string("12")}}, false};
  EXPECT_EQ(template_answer(one, "zh", 10, 200), "查询结果：brand 宝马，n 12。");
  EXPECT_EQ(template_answer(one, "en", 10, 200), "Result: brand BMW, n 12.");
  data::SqlResult many{{"brand", "city"},
                       {{std::string("宝马"), std::string("上海")},
                        {std::string("奔驰"), std::nullopt},
                        {std::string("丰田"), std::string("北京")}},
                       true};
  EXPECT_EQ(template_answer(many, "en", 2, 3),
            "3 rows, the first 2: BMW Shanghai; Mercedes-Benz NULL; … (The result has more than 3 rows; only the "
            "first 3 were read.)");
  EXPECT_EQ(template_answer(many, "zh", 5, 3),
            "共 3 条结果：宝马 上海；奔驰 NULL；丰田 北京。（结果超过 3 行上限，只读取了前 3 行。）");
  EXPECT_EQ(question_language("宝马有几辆？"), "zh");
  EXPECT_EQ(question_language("How many BMWs?"), "en");
}

TEST(AgentAnswerText, TablesAlignCjkAndSayWhatWasLeftOut) {
  data::SqlResult r{{"brand", "n"}, {{std::string("宝马"), std::string("12")}, {std::string("X"), std::string("3")}}, false};
  EXPECT_EQ(format_result_table(r, 10), "brand | n\n------+---\n宝马  | 12\nX     | 3\n");
  EXPECT_EQ(format_result_table(r, 1), "brand | n\n------+---\n宝马  | 12\n(1 more rows)\n");
}

}  // namespace
}  // namespace lathe::agent
