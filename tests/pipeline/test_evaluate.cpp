// Execution accuracy as the eval stage scores it: hand-written answers against labelled
// inventory questions (row order, extra columns, failing and writing SQL, no answer), and the
// tallies of a whole evaluation on a real (tiny, untrained-for-SQL) model.
#include <gtest/gtest.h>

#include "data/collect.h"
#include "data/format.h"
#include "data/inventory_db.h"
#include "data/label.h"
#include "model/model_io.h"
#include "pipeline/evaluate.h"
#include "tests/support/test_support.h"

namespace lathe::pipeline {
namespace {

using ::lathe::testing::TempDir;

class Scoring : public ::testing::Test {
 protected:
  void SetUp() override {
    data::InventoryDbOptions o;
    o.vehicles = 200;
    data::generate_inventory_db(dir_.file("inventory.sqlite"), o);
    db_ = std::make_unique<data::SqlDatabase>(dir_.file("inventory.sqlite"));
  }
  data::Example labelled(const std::string& family, const std::string& language, const std::string& sql) {
    data::Example e{"x-" + std::to_string(n_++), family, language, "q", sql, nullptr, ""};
    const auto report = data::label_examples(*db_, {e});
    EXPECT_EQ(report.kept.size(), 1u) << sql;
    return report.kept.at(0);
  }
  static std::string answer(const std::string& sql) { return data::format_answer("plan", sql); }

  TempDir dir_;
  std::unique_ptr<data::SqlDatabase> db_;
  int n_ = 0;
  data::SqlLimits limits_;
};

TEST_F(Scoring, ResultSetsCompareUnderSqlExecRules) {
  const data::Example brands = labelled("f", "en", "SELECT DISTINCT brand FROM vehicles");
  EXPECT_TRUE(score_answer(*db_, brands, answer("SELECT DISTINCT brand FROM vehicles"), limits_).correct);
  EXPECT_TRUE(score_answer(*db_, brands, answer("SELECT DISTINCT brand AS b FROM vehicles ORDER BY brand DESC"), limits_).correct)
      << "no ORDER BY in the gold query: rows are a multiset, names ignored";
  const AnswerScore extra = score_answer(*db_, brands, answer("SELECT DISTINCT brand, 1 FROM vehicles"), limits_);
  EXPECT_FALSE(extra.correct);
  EXPECT_EQ(extra.error, "wrong_result");

  const data::Example ordered =
      labelled("f", "en", "SELECT vehicle_id FROM vehicles ORDER BY guide_price DESC, vehicle_id LIMIT 3");
  EXPECT_FALSE(score_answer(*db_, ordered,
                            answer("SELECT vehicle_id FROM vehicles ORDER BY guide_price ASC, vehicle_id LIMIT 3"), limits_)
                   .correct);
  const data::Example count = labelled("f", "zh", "SELECT COUNT(*) FROM vehicles WHERE status = 'in_stock'");
  EXPECT_TRUE(score_answer(*db_, count, answer("SELECT count(vehicle_id) FROM vehicles WHERE status='in_stock'"), limits_).correct);
}

TEST_F(Scoring, FailingWritingAndMissingAnswersAreWrong) {
  const data::Example count = labelled("f", "zh", "SELECT COUNT(*) FROM vehicles");
  const AnswerScore bad = score_answer(*db_, count, answer("SELEC COUNT(*) FROM vehicles"), limits_);
  EXPECT_FALSE(bad.correct);
  EXPECT_TRUE(bad.sql_error);
  const AnswerScore write = score_answer(*db_, count, answer("DELETE FROM vehicles"), limits_);
  EXPECT_FALSE(write.correct);
  EXPECT_TRUE(write.sql_error);
  const AnswerScore none = score_answer(*db_, count, "<reasoning>\nhmm\n</reasoning>\n", limits_);
  EXPECT_EQ(none.error, "no_answer");
  EXPECT_FALSE(none.sql.has_value());
  data::SqlLimits two_rows{2, 2.0};
  const data::Example ids = labelled("f", "en", "SELECT vehicle_id FROM vehicles LIMIT 5");
  EXPECT_EQ(score_answer(*db_, ids, answer("SELECT vehicle_id FROM vehicles LIMIT 5"), two_rows).error, "truncated");
}

TEST_F(Scoring, EvaluationTalliesPerFamilyLanguageAndUnseenFamilies) {
  LATHE_REQUIRE_FIXTURE(model_dir, "stories260K-hf");
  LoadedModel m = load_model(model_dir, torch::kCPU, torch::kFloat32);
  const std::vector<data::Example> examples = {labelled("count_brand", "zh", "SELECT COUNT(*) FROM vehicles"),
                                               labelled("count_brand", "en", "SELECT COUNT(*) FROM vehicles"),
                                               labelled("topn", "en", "SELECT DISTINCT brand FROM vehicles")};
  EvalOptions options;
  options.max_new_tokens = 6;
  options.batch_size = 2;
  options.unseen_families = {"topn"};
  const EvalReport r = evaluate_execution_accuracy(m.model, *m.tokenizer, m.chat, "system", *db_, examples, options);
  EXPECT_EQ(r.overall.examples, 3);
  EXPECT_EQ(r.overall.correct, 0) << "a story model writes no SQL";
  EXPECT_EQ(r.no_answer, 3);
  EXPECT_EQ(r.seen_families.examples, 2);
  EXPECT_EQ(r.unseen_families.examples, 1);
  EXPECT_EQ(r.per_family.at("count_brand").examples, 2);
  EXPECT_EQ(r.per_language.at("en").examples, 2);
  ASSERT_EQ(r.predictions.size(), 3u);
  EXPECT_EQ(r.predictions[2]["family"], "topn");
  EXPECT_EQ(r.summary()["overall"]["accuracy"], 0.0);
}

}  // namespace
}  // namespace lathe::pipeline
