// Collect and label: ≥40 families with zh and en phrasings, every gold SQL runs and returns
// rows, determinism, user-question import errors by FILE:LINE, label drop reasons.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include "core/error.h"
#include "data/collect.h"
#include "data/inventory_db.h"
#include "data/label.h"
#include "data/text_io.h"
#include "tests/support/test_support.h"

namespace lathe::data {
namespace {

class CollectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    InventoryDbOptions options;
    options.vehicles = 800;
    generate_inventory_db(dir_->file("db.sqlite"), options);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string db_path() { return dir_->file("db.sqlite"); }
  static testing::TempDir* dir_;
};
testing::TempDir* CollectTest::dir_ = nullptr;

TEST_F(CollectTest, FortyFamiliesEachWithChineseAndEnglishParaphrases) {
  const auto& families = template_families();
  EXPECT_GE(families.size(), 40u);
  std::set<std::string> names;
  for (const auto& f : families) {
    EXPECT_TRUE(names.insert(f.name).second) << "duplicate family " << f.name;
    EXPECT_GE(f.zh.size(), 2u) << f.name;
    EXPECT_GE(f.en.size(), 2u) << f.name;
    for (const auto& q : f.zh) EXPECT_TRUE(contains_cjk(q)) << f.name << ": " << q;
    for (const auto& q : f.en) EXPECT_FALSE(contains_cjk(q)) << f.name << ": " << q;
  }
}

TEST_F(CollectTest, EveryGoldSqlExecutesAndReturnsRows) {
  SqlDatabase db(db_path());
  CollectOptions options;
  options.per_family = 6;
  const auto examples = collect_template_questions(db, options);
  std::map<std::string, std::set<std::string>> languages;
  std::map<std::string, int> with_rows;
  for (const auto& e : examples) {
    languages[e.family].insert(e.language);
    SqlResult r;
    ASSERT_NO_THROW(r = db.query(e.sql)) << e.id << ": " << e.sql;
    if (!r.rows.empty()) ++with_rows[e.family];
    EXPECT_EQ(e.question.find('{'), std::string::npos) << e.id << ": unfilled slot in " << e.question;
  }
  for (const auto& f : template_families()) {
    EXPECT_EQ(languages[f.name], (std::set<std::string>{"en", "zh"})) << f.name;
    // Slots come from real rows, so nearly every query finds something.
    EXPECT_GE(with_rows[f.name], 4) << f.name;
  }
  const LabelReport labelled = label_examples(db, examples);
  EXPECT_GE(labelled.kept.size(), examples.size() * 9 / 10);
  for (const auto& e : labelled.kept) {
    ASSERT_TRUE(e.gold_result.is_object()) << e.id;
    EXPECT_FALSE(e.gold_result["rows"].empty()) << e.id;
  }
}

TEST_F(CollectTest, DeterministicForASeed) {
  SqlDatabase db(db_path());
  CollectOptions options;
  options.per_family = 4;
  const auto a = collect_template_questions(db, options);
  const auto b = collect_template_questions(db, options);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id);
    EXPECT_EQ(a[i].question, b[i].question);
    EXPECT_EQ(a[i].sql, b[i].sql);
  }
  options.seed = 2;
  const auto c = collect_template_questions(db, options);
  size_t same = 0;
  for (size_t i = 0; i < std::min(a.size(), c.size()); ++i) same += a[i].question == c[i].question;
  EXPECT_LT(same, a.size() / 2);
}

TEST_F(CollectTest, EnglishQuestionsNameChineseValuesInEnglish) {
  SqlDatabase db(db_path());
  CollectOptions options;
  options.per_family = 10;
  for (const auto& e : collect_template_questions(db, options)) {
    if (e.family != "count_brand" || e.language != "en") continue;
    EXPECT_FALSE(contains_cjk(e.question)) << e.question;
    EXPECT_TRUE(contains_cjk(e.sql)) << e.sql;
  }
}

TEST(Label, DropsWithReasons) {
  testing::TempDir dir;
  InventoryDbOptions options;
  options.vehicles = 50;
  generate_inventory_db(dir.file("db.sqlite"), options);
  SqlDatabase db(dir.file("db.sqlite"));
  std::vector<Example> examples = {
      {"ok", "f", "en", "q1", "SELECT COUNT(*) FROM vehicles", nullptr},
      {"nosql", "f", "en", "q2", "", nullptr},
      {"bad", "f", "en", "q3", "SELECT nope FROM vehicles", nullptr},
      {"empty", "f", "en", "q4", "SELECT * FROM vehicles WHERE brand = '不存在'", nullptr},
      {"null", "f", "en", "q5", "SELECT AVG(guide_price) FROM vehicles WHERE brand = '不存在'", nullptr},
      {"big", "f", "en", "q6", "SELECT vehicle_id FROM vehicles", nullptr},
      {"write", "f", "en", "q7", "DELETE FROM vehicles", nullptr},
  };
  LabelOptions lo;
  lo.max_result_rows = 10;
  const LabelReport r = label_examples(db, examples, lo);
  ASSERT_EQ(r.kept.size(), 1u);
  EXPECT_EQ(r.kept[0].id, "ok");
  EXPECT_EQ(r.kept[0].gold_result["rows"][0][0], "50");
  EXPECT_EQ(r.dropped.at("no_sql"), 1);
  EXPECT_EQ(r.dropped.at("sql_error"), 2);
  EXPECT_EQ(r.dropped.at("empty_result"), 1);
  EXPECT_EQ(r.dropped.at("all_null"), 1);
  EXPECT_EQ(r.dropped.at("too_many_rows"), 1);
}


TEST(ImportQuestions, JsonlBadRowsGiveFileLine) {
  testing::TempDir dir;
  const std::string path = dir.file("q.jsonl");
  testing::write_text(path,
             "{\"question\": \"宝马有几辆？\", \"sql\": \"SELECT COUNT(*) FROM vehicles WHERE brand = '宝马'\"}\n"
             "\n"
             "{\"question\": \"How many cars?\"}\n"
             "not json\n"
             "{\"sql\": \"SELECT 1\"}\n"
             "{\"question\": 3}\n"
             "[1, 2]\n"
             "{\"question\": \"q\", \"language\": \"fr\"}\n");
  const ImportReport r = import_user_questions(path);
  ASSERT_EQ(r.examples.size(), 2u);
  EXPECT_EQ(r.examples[0].language, "zh");
  EXPECT_EQ(r.examples[0].family, "user");
  EXPECT_EQ(r.examples[1].language, "en");
  EXPECT_TRUE(r.examples[1].sql.empty());  // unlabeled pool
  ASSERT_EQ(r.errors.size(), 5u);
  EXPECT_EQ(r.errors[0], path + ":4: invalid JSON");
  EXPECT_EQ(r.errors[1], path + ":5: missing \"question\"");
  EXPECT_EQ(r.errors[2], path + ":6: \"question\" must be a string");
  EXPECT_EQ(r.errors[3], path + ":7: expected a JSON object");
  EXPECT_EQ(r.errors[4], path + ":8: \"language\" must be zh or en");
}

// Imported labels go through label like template ones; a bad one is reported by file:line.
TEST(ImportQuestions, ImportedLabelsAreValidatedByLine) {
  testing::TempDir dir;
  InventoryDbOptions options;
  options.vehicles = 50;
  generate_inventory_db(dir.file("db.sqlite"), options);
  const std::string path = dir.file("labels.csv");
  testing::write_text(path,
             "question,sql\n"
             "How many cars?,SELECT COUNT(*) FROM vehicles\n"
             "Broken?,SELECT FROM nowhere\n"
             "Nothing?,SELECT vehicle_id FROM vehicles WHERE brand = 'none'\n");
  const ImportReport imported = import_user_questions(path);
  ASSERT_EQ(imported.examples.size(), 3u);
  EXPECT_EQ(imported.examples[1].source, path + ":3");
  const LabelReport r = label_examples(SqlDatabase(dir.file("db.sqlite")), imported.examples);
  ASSERT_EQ(r.kept.size(), 1u);
  EXPECT_EQ(r.kept[0].source, path + ":2");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].rfind(path + ":3 (user-00001): sql_error: ", 0), 0u) << r.messages[0];
  EXPECT_EQ(r.messages[1], path + ":4 (user-00002): empty_result");
  // The source survives the JSONL round trip (labelled files keep naming the user's row).
  write_examples_jsonl(dir.file("kept.jsonl"), r.kept);
  EXPECT_EQ(read_examples_jsonl(dir.file("kept.jsonl"))[0].source, path + ":2");
}

TEST(ImportQuestions, CsvBadRowsGiveFileLine) {
  testing::TempDir dir;
  const std::string path = dir.file("q.csv");
  testing::write_text(path,
             "question,sql\n"
             "\"How many BMWs, in total?\",\"SELECT COUNT(*) FROM vehicles WHERE brand = '宝马'\"\n"
             ",SELECT 1\n"
             "too,many,fields\n"
             "\"multi\nline question\",\n"
             "unlabeled question,\n");
  const ImportReport r = import_user_questions(path);
  ASSERT_EQ(r.examples.size(), 3u);
  EXPECT_EQ(r.examples[0].question, "How many BMWs, in total?");
  EXPECT_EQ(r.examples[1].question, "multi\nline question");
  EXPECT_EQ(r.examples[2].sql, "");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0], path + ":3: empty question");
  EXPECT_EQ(r.errors[1], path + ":4: expected 2 fields, found 3");

  testing::write_text(dir.file("bad.csv"), "question\n\"never closed\n");
  try {
    import_user_questions(dir.file("bad.csv"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("bad.csv") + ":2: unterminated quoted field");
  }
  testing::write_text(dir.file("nohead.csv"), "text,sql\nq,\n");
  EXPECT_THROW(import_user_questions(dir.file("nohead.csv")), Error);
  EXPECT_THROW(import_user_questions(dir.file("x.txt")), Error);
}

TEST(FillTemplate, MissingSlotIsAnError) {
  EXPECT_EQ(fill_template("{a} and {b}", {{"a", "1"}, {"b", "2"}}), "1 and 2");
  EXPECT_THROW(fill_template("{a} and {c}", {{"a", "1"}}), Error);
}

}  // namespace
}  // namespace lathe::data
