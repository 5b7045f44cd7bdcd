// Rewards on hand-written completions. The XML expectations (both dotall modes, and the
// tag-count doubles) were produced by Python's re.match and the GSM8K recipe's count_xml
// run on these exact strings, so the C++ matcher is checked against the real thing.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "data/sql_exec.h"
#include "rl/rewards.h"
#include "tests/support/test_support.h"

namespace lathe::rl {
namespace {
using nlohmann::json;

struct XmlCase {
  std::string text;
  bool strict_nodot, strict_dot, loose_nodot, loose_dot;
  double count;
};

const std::vector<XmlCase>& xml_cases() {
  static const std::vector<XmlCase> cases{
    {std::string("<reasoning>\nthink\n</reasoning>\n<answer>\nSELECT 1\n</answer>\n"), true, true, false, true, 0.5},
    {std::string("<reasoning>\nline one\nline two\n</reasoning>\n<answer>\nSELECT 1\n</answer>\n"), false, true, false, true, 0.5},
    {std::string("<reasoning>\nthink\n</reasoning>\n<answer>\nSELECT a\nFROM t\n</answer>\n"), false, true, false, true, 0.5},
    {std::string("<reasoning>\nthink\n</reasoning>\n<answer>\nSELECT 1\n</answer>\n\n"), true, true, false, true, 0.498},
    {std::string("<reasoning>\nthink\n</reasoning>\n<answer>\nSELECT 1\n</answer>\n\n\n"), false, false, false, true, 0.496},
    {std::string("<reasoning>\nthink\n</reasoning>\n<answer>\nSELECT 1\n</answer>"), false, false, false, true, 0.443},
    {std::string("<reasoning>\nthink\n</reasoning>\n<answer>\nSELECT 1\n</answer>\ntrailing"), false, false, false, true, 0.484},
    {std::string(" <reasoning>\nthink\n</reasoning>\n<answer>\nSELECT 1\n</answer>\n"), false, false, false, false, 0.5},
    {std::string("<reasoning>think</reasoning><answer>SELECT 1</answer>"), false, false, true, true, 0.0},
    {std::string("<reasoning>think</reasoning> \t　 <answer>x</answer> and more"), false, false, true, true, 0.0},
    {std::string("<reasoning>a\nb</reasoning>\n<answer>x</answer>"), false, false, false, true, 0.0},
    {std::string("<reasoning>ab</reasoning>\n<answer>x\ny</answer>"), false, false, false, true, 0.0},
    {std::string("<reasoning>ab</reasoning>x<answer>y</answer>"), false, false, false, false, 0.0},
    {std::string("<reasoning>\n\n</reasoning>\n<answer>\n\n</answer>\n"), true, true, false, true, 0.5},
    {std::string("<reasoning>\n</reasoning>\n<answer>\n</answer>\n"), false, false, false, true, 0.5},
    {std::string(""), false, false, false, false, 0.0},
    {std::string("<answer>\nSELECT 1\n</answer>\n"), false, false, false, false, 0.125},
    {std::string("<reasoning>\n查询红色的车\n</reasoning>\n<answer>\nSELECT 1\n</answer>\n多余的文字"), false, false, false, true, 0.49},
    {std::string("<reasoning>\n思考\n</reasoning>\n<answer>\n答案\n</answer>"), false, false, false, true, 0.452},
    {std::string("<reasoning>\nx\n</reasoning>\n</reasoning>\n<answer>\ny\n</answer>\n"), false, true, false, true, 0.5},
    {std::string("<reasoning>\nx\n</reasoning>\n<answer>\ny\n</answer>\n</answer>\n"), false, true, false, true, 0.365},
    {std::string("<reasoning>\n</reasoning>\n<answer>\n</answer>\n"), false, false, false, true, 0.5},
    {std::string("<reasoning>\nr1\n</reasoning>\n<answer>\na1\n</answer>\n<reasoning>\nr2\n</reasoning>\n<answer>\na2\n</answer>\n"), false, true, false, true, 0.0},
    {std::string("<reasoning>x</reasoning>\n<answer>a</answer>\n<reasoning>\nlong\nreasoning\n</reasoning><answer>b</answer>"), false, false, true, true, 0.125},
    {std::string("<reasoning>\nx\n</reasoning>\n<answer>\ny\n</answer>\n") + std::string(600, 'z'), false, false, false, true, -0.7},
  };
  return cases;
}

TEST(XmlRewards, MatchPythonReMatchBothDotallModes) {
  for (const auto& c : xml_cases()) {
    EXPECT_EQ(xml_strict_matches(c.text, false), c.strict_nodot) << c.text;
    EXPECT_EQ(xml_strict_matches(c.text, true), c.strict_dot) << c.text;
    EXPECT_EQ(xml_loose_matches(c.text, false), c.loose_nodot) << c.text;
    EXPECT_EQ(xml_loose_matches(c.text, true), c.loose_dot) << c.text;
  }
}

TEST(XmlRewards, CountEqualsRecipeBitForBit) {
  for (const auto& c : xml_cases()) EXPECT_EQ(xml_count_score(c.text), c.count) << c.text;
}

TEST(XmlRewards, CountMeasuresCodePointsNotBytes) {
  // 5 CJK characters (15 bytes) after "\n</answer>\n": −0.005, and −(6 − 1)·0.001 for the
  // "\n</answer>" piece "\n多余的文字" (6 code points).
  const std::string text = "<reasoning>\n查询\n</reasoning>\n<answer>\nSELECT 1\n</answer>\n多余的文字";
  EXPECT_EQ(code_point_length("多余的文字"), 5);
  double expected = 0.0;
  expected += 0.125;
  expected += 0.125;
  expected += 0.125;
  expected -= 5 * 0.001;
  expected += 0.125;
  expected -= (6 - 1) * 0.001;
  EXPECT_EQ(xml_count_score(text), expected);
}

TEST(XmlRewards, RegisteredScoresAndDotallOption) {
  const std::vector<std::string> completions{xml_cases()[0].text, xml_cases()[1].text, ""};
  auto strict = make_reward("xml_strict");
  EXPECT_EQ(strict->score(json::object(), completions), (std::vector<double>{0.5, 0.5, 0.0}));
  auto strict_recipe = make_reward("xml_strict", {{"dotall", false}});
  EXPECT_EQ(strict_recipe->score(json::object(), completions), (std::vector<double>{0.5, 0.0, 0.0}));
  auto loose_recipe = make_reward("xml_loose", {{"dotall", false}});
  EXPECT_EQ(loose_recipe->score(json::object(), completions), (std::vector<double>{0.0, 0.0, 0.0}));
  auto loose = make_reward("xml_loose");
  EXPECT_EQ(loose->score(json::object(), completions), (std::vector<double>{0.5, 0.5, 0.0}));
}

TEST(XmlRewards, VeryLongCompletionsDoNotBlowUp) {
  std::string reasoning;
  for (int i = 0; i < 20000; ++i) reasoning += "line " + std::to_string(i) + "\n";
  const std::string text = "<reasoning>\n" + reasoning + "\n</reasoning>\n<answer>\nSELECT 1\n</answer>\n";
  EXPECT_TRUE(xml_strict_matches(text, true));
  EXPECT_FALSE(xml_strict_matches(text, false));
  EXPECT_EQ(xml_count_score(text), 0.5);
}

TEST(XmlRewards, ExtractAnswerFollowsRecipe) {
  EXPECT_EQ(extract_xml_answer("<answer>\n 42 \n</answer>"), "42");
  EXPECT_EQ(extract_xml_answer("<answer>1</answer><answer>2</answer>"), "2");
  EXPECT_EQ(extract_xml_answer("no tags "), "no tags");
  EXPECT_EQ(extract_xml_answer("<answer>\u3000open"), "open");
}

TEST(RewardRegistry, UnknownNamesAndOptionsAreErrors) {
  try {
    make_reward("xml_strikt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("valid rewards: answer_contains"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_reward("xml_strict", {{"dotal", true}}), Error);
  EXPECT_THROW(make_reward("sql_execution"), Error);  // no database
}

class ConstantReward : public RewardFunction {
 public:
  std::vector<double> score(const json&, const std::vector<std::string>& c) override {
    return std::vector<double>(c.size(), 1.0);
  }
};

TEST(RewardRegistry, NewRewardsPlugInByNameAndWeightsSum) {
  register_reward({"test_constant", "1 for everything", {}, [](const json&) { return std::make_unique<ConstantReward>(); }});
  EXPECT_THROW(register_reward({"test_constant", "", {}, nullptr}), Error);
  std::vector<WeightedReward> rewards;
  rewards.push_back({"test_constant", 0.25, make_reward("test_constant")});
  rewards.push_back({"xml_strict", 2.0, make_reward("xml_strict")});
  const GroupScores s = score_group(rewards, json::object(), {xml_cases()[0].text, "nope"});
  EXPECT_EQ(s.total, (std::vector<double>{0.25 + 1.0, 0.25}));
  EXPECT_EQ(s.per_reward[1], (std::vector<double>{0.5, 0.0}));
}

class SqlRewardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data::InventoryDbOptions options;
    options.vehicles = 120;
    data::generate_inventory_db(dir_.file("db.sqlite"), options);
  }
  json row_for(const std::string& gold_sql) {
    data::SqlDatabase db(dir_.file("db.sqlite"));
    auto gold = data::canonicalize(db.query(gold_sql), data::has_top_level_order_by(gold_sql));
    return {{"gold_sql", gold_sql}, {"gold_result", data::canonical_to_json(gold)}};
  }
  std::string answer(const std::string& sql) { return data::format_answer("plan", sql); }
  testing::TempDir dir_;
};

TEST_F(SqlRewardTest, ExecutionMatchScoresTwoElseZero) {
  auto reward = make_reward("sql_execution", {{"database", dir_.file("db.sqlite")}});
  const json row = row_for("SELECT color, COUNT(*) FROM vehicles GROUP BY color");
  const std::vector<double> got = reward->score(
      row, {answer("SELECT color, COUNT(*) AS n FROM vehicles GROUP BY color ORDER BY n"),  // same set, other order
            answer("SELECT color, COUNT(*) FROM vehicles WHERE 0 GROUP BY color"),        // empty
            answer("SELEC nonsense"),                                                   // fails
            answer("DELETE FROM vehicles"),                                             // writes
            "no answer block",
            answer("SELECT color FROM vehicles GROUP BY color")});                      // wrong columns
  EXPECT_EQ(got, (std::vector<double>{2.0, 0.0, 0.0, 0.0, 0.0, 0.0}));
}

TEST_F(SqlRewardTest, OrderMattersWhenGoldOrders) {
  auto reward = make_reward("sql_execution", {{"database", dir_.file("db.sqlite")}});
  const json row = row_for("SELECT vehicle_id FROM vehicles ORDER BY vehicle_id LIMIT 3");
  EXPECT_EQ(reward->score(row, {answer("SELECT vehicle_id FROM vehicles ORDER BY vehicle_id DESC LIMIT 3")}),
            (std::vector<double>{0.0}));
  EXPECT_EQ(reward->score(row, {answer("SELECT vehicle_id FROM vehicles ORDER BY vehicle_id LIMIT 3")}),
            (std::vector<double>{2.0}));
}

TEST_F(SqlRewardTest, RowF1PartialCredit) {
  auto reward = make_reward("sql_execution", {{"database", dir_.file("db.sqlite")}, {"partial_credit", "row_f1"}});
  const json row = row_for("SELECT store_id FROM stores WHERE store_id <= 4");
  // 2 of 4 gold rows, 2 returned: F1 = 2·2 / (4 + 2) = 2/3.
  const auto got = reward->score(row, {answer("SELECT store_id FROM stores WHERE store_id <= 2"),
                                       answer("SELECT store_id FROM stores WHERE store_id <= 4")});
  EXPECT_DOUBLE_EQ(got[0], 2.0 * 2.0 * 2.0 / 6.0);
  EXPECT_EQ(got[1], 2.0);
}

TEST_F(SqlRewardTest, RowWithoutGoldResultIsAnError) {
  auto reward = make_reward("sql_execution", {{"database", dir_.file("db.sqlite")}});
  EXPECT_THROW(reward->score(json{{"gold_sql", "SELECT 1"}}, {"x"}), Error);
}

TEST(SqlLiterals, ConstantsNotNamesCommentsOrQuotedIdentifiers) {
  using V = std::vector<std::string>;
  EXPECT_EQ(sql_literals("SELECT COUNT(*) FROM vehicles WHERE brand = '宝马' AND price >= 300000 LIMIT 5"),
            (V{"'宝马", "#300000", "#5"}));
  // Doubled quotes unescape; 5, 5.0, 5e0 and 0x5 read alike; digits in names and quoted names are
  // no constants; comments are skipped.
  EXPECT_EQ(sql_literals("SELECT col2, \"3rd\", `t1`.[4x] FROM t9 WHERE a = 'it''s' -- 7 in a comment\n"
                         "AND b IN (5, 5.0, 5e0, 0x5, .5) /* 8 */"),
            (V{"'it's", "#5", "#5", "#5", "#5", "#0.5"}));
  EXPECT_EQ(sql_literals("SELECT date('now', '-30 days')"), (V{"'now", "'-30 days"}));
  EXPECT_EQ(sql_literals("SELECT '5', 5"), (V{"'5", "#5"}));  // a string is not the number
  EXPECT_EQ(sql_literals(""), V{});
  // Unterminated quotes and comments end at the end of the text, without reading past it.
  EXPECT_EQ(sql_literals("SELECT 'open"), (V{"'open"}));
  EXPECT_EQ(sql_literals("SELECT 1 /* open"), (V{"#1"}));
  EXPECT_EQ(sql_literals("SELECT [open"), V{});
  EXPECT_EQ(sql_literals("SELECT 1e"), (V{"#1"}));
}

TEST(SqlLiterals, RewardIsF1OfTheGoldConstants) {
  auto reward = make_reward("sql_literals");
  const json row{{"gold_sql", "SELECT vehicle_id FROM vehicles WHERE brand = '宝马' AND status = '在库' LIMIT 3"}};
  const auto answer = [](const std::string& sql) { return data::format_answer("plan", sql); };
  const std::vector<double> got = reward->score(
      row, {answer("SELECT vehicle_id FROM vehicles WHERE status = '在库' AND brand = '宝马' LIMIT 3"),  // all, other order
            answer("SELECT vehicle_id FROM vehicles WHERE brand = '本田' AND status = '在库' LIMIT 3"),  // 2 of 3
            answer("SELECT * FROM vehicles"),                                                          // none
            answer("SELECT 1 WHERE '宝马' = '宝马' AND '宝马' = '在库' OR 3 = 3"),  // a multiset: extra copies cost
            "no answer block"});
  ASSERT_EQ(got.size(), 5u);
  EXPECT_DOUBLE_EQ(got[0], 1.0);
  EXPECT_DOUBLE_EQ(got[1], 2.0 * 2 / 6);
  EXPECT_DOUBLE_EQ(got[2], 0.0);
  EXPECT_DOUBLE_EQ(got[3], 2.0 * 3 / (3 + 7));
  EXPECT_DOUBLE_EQ(got[4], 0.0);
  // No constants on either side agree fully; the value option scales.
  auto scaled = make_reward("sql_literals", {{"value", 0.5}});
  EXPECT_EQ(scaled->score(json{{"gold_sql", "SELECT COUNT(*) FROM vehicles"}},
                          {answer("SELECT COUNT(*) FROM stores"), answer("SELECT COUNT(*) FROM stores LIMIT 1")}),
            (std::vector<double>{0.5, 0.0}));
  EXPECT_THROW(reward->score(json{{"prompt", "x"}}, {"x"}), Error);  // no gold_sql column
  EXPECT_THROW(reward->score(json{{"gold_sql", 3}}, {"x"}), Error);
}

TEST(AnswerRewards, MatchAndContains) {
  auto match = make_reward("answer_match");
  EXPECT_EQ(match->score({{"answer", " Forty  Two"}}, {"<answer>\nforty two\n</answer>", "<answer>41</answer>"}),
            (std::vector<double>{1.0, 0.0}));
  auto contains = make_reward("answer_contains");
  EXPECT_EQ(contains->score({{"required_terms", {"red", "SUV"}}}, {"<answer>a red suv</answer>", "<answer>red</answer>", ""}),
            (std::vector<double>{1.0, 0.5, 0.0}));
}

// ---- command: an external reward program over JSON lines ----------------------------------

class CommandRewardTest : public ::testing::Test {
 protected:
  // A shell reward program: logs each request line and its own pid, answers `answer`.
  std::string program(const std::string& answer) {
    const std::string script = dir_.file("reward.sh");
    std::ofstream out(script);
    out << "echo $$ >> '" << dir_.file("pids") << "'\n"
        << "while IFS= read -r line; do\n"
        << "  printf '%s\\n' \"$line\" >> '" << dir_.file("requests.jsonl") << "'\n"
        << "  " << answer << "\n"
        << "done\n";
    out.close();
    return "sh " + script;
  }
  std::unique_ptr<RewardFunction> make(const std::string& program, double timeout = 5.0) {
    return make_reward("command", {{"program", program}, {"timeout_seconds", timeout}});
  }
  std::vector<std::string> lines(const std::string& name) {
    std::ifstream in(dir_.file(name));
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
  testing::TempDir dir_;
};

TEST_F(CommandRewardTest, SendsRowAndCompletionsAndKeepsOneProcess) {
  auto reward = make(program("echo '{\"scores\": [0.25, 1, -2]}'"));
  const json row{{"prompt", {{{"role", "user"}, {"content", "几辆宝马？"}}}}, {"gold_sql", "SELECT 1"}, {"n", 3}};
  const std::vector<std::string> completions{"a", "多行\n文本", ""};
  EXPECT_EQ(reward->score(row, completions), (std::vector<double>{0.25, 1.0, -2.0}));
  EXPECT_EQ(reward->score(row, completions), (std::vector<double>{0.25, 1.0, -2.0}));
  const auto requests = lines("requests.jsonl");
  ASSERT_EQ(requests.size(), 2u);
  const json first = json::parse(requests[0]);
  EXPECT_EQ(first["row"], row);
  EXPECT_EQ(first["completions"], json(completions));
  EXPECT_EQ(lines("pids").size(), 1u) << "the program is started once and kept";
}

TEST_F(CommandRewardTest, CrashIsAnErrorWithTheExitStatus) {
  auto reward = make("sh -c 'read line; exit 3'");
  const std::string e = error_of([&] { reward->score(json::object(), {"x"}); });
  EXPECT_NE(e.find("exited with status 3"), std::string::npos) << e;
}

TEST_F(CommandRewardTest, HangIsKilledAfterTheTimeout) {
  auto reward = make("sleep 30", 0.3);
  const auto start = std::chrono::steady_clock::now();
  const std::string e = error_of([&] { reward->score(json::object(), {"x"}); });
  EXPECT_NE(e.find("did not answer within 300 ms"), std::string::npos) << e;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(CommandRewardTest, MalformedAnswersAreErrors) {
  EXPECT_NE(error_of([&] { make(program("echo 'not json'"))->score(json::object(), {"x"}); }).find("not JSON"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make(program("echo '{\"scores\": [1, 2]}'"))->score(json::object(), {"x"}); })
                .find("returned 2 scores for 1 completions"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make(program("echo '{\"score\": 1}'"))->score(json::object(), {"x"}); })
                .find("without a \"scores\" list"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make(program("echo '{\"scores\": [\"high\"]}'"))->score(json::object(), {"x"}); })
                .find("not a finite number"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make(program("echo '{\"error\": \"no database\"}'"))->score(json::object(), {"x"}); })
                .find("reported an error: \"no database\""),
            std::string::npos);
}

TEST_F(CommandRewardTest, MissingProgramIsAnError) {
  EXPECT_NE(error_of([&] { make_reward("command"); }).find("rewards.command.program"), std::string::npos);
  const std::string e = error_of([&] { make("/nonexistent/reward-program")->score(json::object(), {"x"}); });
  EXPECT_NE(e.find("exited with status 127"), std::string::npos) << e;
}

}  // namespace
}  // namespace lathe::rl
