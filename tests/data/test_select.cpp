// Selection (active learning): vote entropy against hand-computed values; crafted answer sets
// whose result sets agree or disagree rank as expected; failed SQL is one "error" class; the
// random strategy is seeded and independent of pool order; ties fall to the seeded order;
// entropy scores of a tiny model equal a direct double-precision recomputation over full
// forwards, and rank the pool in that order; selection never reads the labels.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "core/error.h"
#include "data/inventory_db.h"
#include "data/select.h"
#include "data/text_io.h"
#include "model/bpe_trainer.h"
#include "model/model_init.h"
#include "model/model_io.h"
#include "tests/support/test_support.h"

namespace lathe::data {
namespace {

using ::lathe::testing::TempDir;

Example question(const std::string& id, const std::string& text = "") {
  return {id, "fam", "en", text.empty() ? "question " + id : text, "", nullptr, ""};
}

std::string answer(const std::string& sql) { return "<reasoning>\nplan\n</reasoning>\n<answer>\n" + sql + "\n</answer>\n"; }

TEST(VoteEntropy, HandComputedValues) {
  EXPECT_DOUBLE_EQ(vote_entropy({}), 0.0);
  EXPECT_DOUBLE_EQ(vote_entropy({"a", "a", "a"}), 0.0);
  EXPECT_NEAR(vote_entropy({"a", "b"}), std::log(2.0), 1e-12);
  EXPECT_NEAR(vote_entropy({"a", "b", "c", "d"}), std::log(4.0), 1e-12);
  // counts 2, 1, 1 of 4: -(1/2 ln 1/2 + 2 · 1/4 ln 1/4) = 1.5 ln 2
  EXPECT_NEAR(vote_entropy({"a", "b", "a", "c"}), 1.5 * std::log(2.0), 1e-12);
  // counts 3, 1 of 4: -(3/4 ln 3/4 + 1/4 ln 1/4) = 0.562335...
  EXPECT_NEAR(vote_entropy({"x", "x", "y", "x"}), 0.5623351446188083, 1e-12);
}

TEST(MeanTokenEntropy, AveragesTheSteps) {
  Completion c;
  EXPECT_EQ(mean_token_entropy(c), 0.0);
  c.choices.resize(3);
  c.choices[0].entropy = 1.0f;
  c.choices[1].entropy = 2.0f;
  c.choices[2].entropy = 0.5f;
  EXPECT_NEAR(mean_token_entropy(c), 3.5 / 3, 1e-7);
}

class DisagreementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InventoryDbOptions options;
    options.vehicles = 120;
    generate_inventory_db(dir_.file("db.sqlite"), options);
    db_ = std::make_unique<SqlDatabase>(dir_.file("db.sqlite"));
  }
  std::string vote(const std::string& completion) { return result_vote(execute_answer(*db_, completion, {})); }
  TempDir dir_;
  std::unique_ptr<SqlDatabase> db_;
};

TEST_F(DisagreementTest, VotesIgnoreColumnNamesRowOrderAndNumberForms) {
  const std::string a = vote(answer("SELECT COUNT(*) FROM vehicles"));
  EXPECT_EQ(a, vote(answer("SELECT count(vehicle_id) AS n FROM vehicles;")));
  EXPECT_EQ(a, vote(answer("SELECT COUNT(*) * 1.0 FROM vehicles")));
  EXPECT_NE(a, vote(answer("SELECT COUNT(*) FROM vehicles WHERE status = 'sold'")));
  EXPECT_EQ(vote(answer("SELECT brand FROM vehicles GROUP BY brand ORDER BY brand")),
            vote(answer("SELECT DISTINCT brand FROM vehicles ORDER BY brand DESC")));
  // Every failure is the one shared class.
  EXPECT_EQ(vote("no answer block"), "error");
  EXPECT_EQ(vote(answer("SELEC 1")), "error");
  EXPECT_EQ(vote(answer("DELETE FROM vehicles")), "error");
  EXPECT_EQ(vote(answer("SELECT nope FROM vehicles")), "error");
  // A result cut at the row cap is never the same answer as the complete one.
  SqlLimits two_rows;
  two_rows.max_rows = 2;
  const std::string all_ids = answer("SELECT vehicle_id FROM vehicles");
  EXPECT_NE(result_vote(execute_answer(*db_, all_ids, two_rows)), vote(all_ids));
}

TEST_F(DisagreementTest, CraftedSampleSetsRankAsExpected) {
  const std::string count_all = answer("SELECT COUNT(*) FROM vehicles");
  const std::string count_all_too = answer("SELECT COUNT(vehicle_id) FROM vehicles");
  const std::string count_sold = answer("SELECT COUNT(*) FROM vehicles WHERE status = 'sold'");
  const std::string count_ev = answer("SELECT COUNT(*) FROM vehicles WHERE fuel_type = 'ev'");
  const std::string avg_price = answer("SELECT AVG(guide_price) FROM vehicles");
  const std::string broken = answer("SELECT FROM");
  const std::vector<Example> pool = {question("agree"), question("two_two"), question("torn"), question("failing"),
                                     question("half_failing"), question("three_one")};
  const std::vector<std::vector<std::string>> samples = {
      {count_all, count_all_too, count_all, count_all_too},  // one result set: H = 0
      {count_all, count_sold, count_all, count_sold},        // 2 + 2: ln 2
      {count_all, count_sold, count_ev, avg_price},          // four results: ln 4
      {broken, "no answer", broken, answer("")},             // all "error": H = 0
      {count_ev, broken, count_ev, "nothing"},               // 2 results + 2 errors: ln 2
      {count_all, count_all, count_all, count_sold},         // 3 + 1
  };
  const auto scored = disagreement_from_samples(*db_, pool, samples, {});
  ASSERT_EQ(scored.size(), pool.size());
  EXPECT_NEAR(scored[0].score, 0.0, 1e-12);
  EXPECT_NEAR(scored[1].score, std::log(2.0), 1e-12);
  EXPECT_NEAR(scored[2].score, std::log(4.0), 1e-12);
  EXPECT_NEAR(scored[3].score, 0.0, 1e-12);
  EXPECT_EQ(scored[3].details["errors"], 4);
  EXPECT_EQ(scored[3].details["classes"], 1);
  EXPECT_NEAR(scored[4].score, std::log(2.0), 1e-12);
  EXPECT_EQ(scored[4].details["errors"], 2);
  EXPECT_NEAR(scored[5].score, 0.5623351446188083, 1e-12);
  EXPECT_EQ(scored[5].details["largest_class"], 3);

  std::vector<double> scores;
  for (const auto& s : scored) scores.push_back(s.score);
  const auto order = rank_by_score(pool, scores, 4, 7);
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(pool[order[0]].id, "torn");
  // The two ln 2 questions tie; the seeded order decides, the same way every time.
  std::set<std::string> middle{pool[order[1]].id, pool[order[2]].id};
  EXPECT_EQ(middle, (std::set<std::string>{"two_two", "half_failing"}));
  EXPECT_EQ(random_score(pool[order[1]].id, 7) > random_score(pool[order[2]].id, 7), true);
  EXPECT_EQ(pool[order[3]].id, "three_one");
}

TEST(SelectRandom, SeededAndIndependentOfPoolOrder) {
  std::vector<Example> pool;
  for (int i = 0; i < 50; ++i) pool.push_back(question("q" + std::to_string(i)));
  SelectOptions options;
  options.count = 10;
  options.seed = 3;
  auto ids = [](const std::vector<ScoredExample>& s) {
    std::vector<std::string> out;
    for (const auto& e : s) out.push_back(e.example.id);
    return out;
  };
  const auto a = ids(select_examples(nullptr, nullptr, pool, options));
  ASSERT_EQ(a.size(), 10u);
  std::vector<Example> shuffled = pool;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(5));
  EXPECT_EQ(ids(select_examples(nullptr, nullptr, shuffled, options)), a);
  options.seed = 4;
  EXPECT_NE(ids(select_examples(nullptr, nullptr, pool, options)), a);
  options.count = 80;  // more than the pool: all of it
  EXPECT_EQ(select_examples(nullptr, nullptr, pool, options).size(), 50u);
  // Scores are uniform in [0, 1) and descending.
  options.count = 50;
  const auto all = select_examples(nullptr, nullptr, pool, options);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GE(all[i - 1].score, all[i].score);
  EXPECT_GE(all.back().score, 0.0);
  EXPECT_LT(all.front().score, 1.0);
}

TEST(SelectErrors, NameTheProblem) {
  std::vector<Example> pool{question("a"), question("b")};
  SelectOptions options;
  options.strategy = SelectStrategy::Entropy;
  EXPECT_THROW(select_examples(nullptr, nullptr, pool, options), Error);
  options.strategy = SelectStrategy::Random;
  options.count = 0;
  EXPECT_THROW(select_examples(nullptr, nullptr, pool, options), Error);
  options.count = 1;
  pool.push_back(question("a"));
  try {
    select_examples(nullptr, nullptr, pool, options);
    FAIL() << "duplicate id accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'a' twice"), std::string::npos) << e.what();
  }
  try {
    parse_select_strategy("uncertainty");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "unknown selection strategy 'uncertainty' (valid: random, entropy, disagreement)");
  }
}

TEST(SelectOutput, IsAnExamplesFileWithRankAndScore) {
  TempDir dir;
  Example labelled = question("x");
  labelled.sql = "SELECT 1";
  std::vector<ScoredExample> selected{{labelled, 0.75, {{"errors", 1}}}, {question("y"), 0.5, nlohmann::json::object()}};
  write_selection_jsonl(dir.file("sel.jsonl"), selected, SelectStrategy::Disagreement);
  const auto back = read_examples_jsonl(dir.file("sel.jsonl"));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].id, "x");
  EXPECT_EQ(back[0].sql, "SELECT 1");  // pool rows pass through unchanged
  std::vector<nlohmann::json> lines;
  for (const auto& line : read_jsonl_lines(dir.file("sel.jsonl"))) lines.push_back(nlohmann::json::parse(line.text));
  EXPECT_EQ(lines[0]["rank"], 1);
  EXPECT_EQ(lines[1]["rank"], 2);
  EXPECT_EQ(lines[0]["score"], 0.75);
  EXPECT_EQ(lines[0]["strategy"], "disagreement");
  EXPECT_EQ(lines[0]["details"]["errors"], 1);

  const auto rest = exclude_ids({question("x"), question("y"), question("z")}, back);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].id, "z");
}

// A random tiny model with a byte-level BPE and the Plain chat template, saved and loaded as
// a model folder.
class TinyModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BpeTrainOptions bpe;
    bpe.num_merges = 60;
    save_bpe_model(train_bpe("How many BMW cars are in stock? 宝马有几辆？ SELECT COUNT(*) FROM vehicles", bpe),
                   dir_.path());
    auto tokenizer = load_tokenizer(dir_.path());
    ModelConfig c = testing::tiny_test_config(tokenizer->vocab_size(), 512);
    c.eos_token_ids = {*tokenizer->eos_id()};
    CausalLM model(c);
    init_random_weights(model, 11, 0.25);  // peaked enough that entropies differ between questions
    save_model(model, dir_.path(), torch::kFloat32);
    loaded_ = load_model(dir_.path(), torch::kCPU, torch::kFloat32);
    qm_ = make_question_model(loaded_, "Answer with SQL.");  // a short prompt keeps the test fast
    for (const char* q : {"How many BMW cars?", "宝马有几辆？", "Average guide price of SUVs", "Count EVs in stock",
                          "哪些车在库超过90天？", "List stores in 上海"}) {
      pool_.push_back(question("q" + std::to_string(pool_.size()), q));
    }
  }

  // Mean next-token entropy of the greedy continuation, recomputed from full forwards.
  double reference_entropy(const Example& e, const Completion& c) {
    torch::NoGradGuard ng;
    std::vector<int64_t> ids;
    for (int32_t t : question_prompt_ids(qm_, e.question)) ids.push_back(t);
    double sum = 0;
    for (int32_t token : c.tokens) {
      auto logits = qm_.model->forward_full(torch::tensor(ids).view({1, -1}))[0][-1].to(torch::kFloat64);
      auto logp = torch::log_softmax(logits, -1);
      sum += -(logp.exp() * logp).sum().item<double>();
      EXPECT_EQ(logits.argmax().item<int64_t>(), token);  // the answer is greedy
      ids.push_back(token);
    }
    return sum / static_cast<double>(c.tokens.size());
  }

  TempDir dir_;
  LoadedModel loaded_;
  QuestionModel qm_;
  std::vector<Example> pool_;
};

TEST_F(TinyModelTest, EntropyScoresMatchAFullForwardRecomputationAndRankThePool) {
  SelectOptions options;
  options.strategy = SelectStrategy::Entropy;
  options.max_new_tokens = 6;
  options.batch_size = 4;  // two batches of uneven size
  const auto scored = entropy_scores(qm_, pool_, options);
  ASSERT_EQ(scored.size(), pool_.size());
  AnswerOptions greedy;
  greedy.sampling.temperature = 0;
  greedy.sampling.max_new_tokens = 6;
  const auto completions = answer_questions(qm_, pool_, greedy);
  std::vector<std::pair<double, std::string>> reference;
  for (size_t i = 0; i < pool_.size(); ++i) {
    const double expected = reference_entropy(pool_[i], completions[i][0]);
    EXPECT_NEAR(scored[i].score, expected, 1e-4) << pool_[i].id;
    EXPECT_EQ(scored[i].details["tokens"], completions[i][0].tokens.size());
    reference.emplace_back(expected, pool_[i].id);
  }
  std::sort(reference.rbegin(), reference.rend());
  EXPECT_GT(reference.front().first - reference.back().first, 1e-3) << "the crafted pool should differ";

  options.count = 3;
  const auto top = select_examples(&qm_, nullptr, pool_, options);
  ASSERT_EQ(top.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(top[i].example.id, reference[i].second) << "rank " << i + 1;

  // Labels are never read: the same pool with gold SQL ranks identically.
  std::vector<Example> labelled = pool_;
  for (auto& e : labelled) e.sql = "SELECT 1";
  const auto again = select_examples(&qm_, nullptr, labelled, options);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(again[i].example.id, top[i].example.id);
}

TEST_F(TinyModelTest, DisagreementSamplesKAnswersReproducibly) {
  InventoryDbOptions db_options;
  db_options.vehicles = 50;
  generate_inventory_db(dir_.file("db.sqlite"), db_options);
  const SqlDatabase db(dir_.file("db.sqlite"));
  SelectOptions options;
  options.strategy = SelectStrategy::Disagreement;
  options.samples = 3;
  options.max_new_tokens = 5;
  options.count = 6;
  options.seed = 9;
  const auto a = select_examples(&qm_, &db, pool_, options);
  ASSERT_EQ(a.size(), pool_.size());
  for (const auto& s : a) {
    EXPECT_EQ(s.details["samples"], 3);
    // A random model writes no <answer>: every sample is the shared error class.
    EXPECT_EQ(s.details["errors"], 3);
    EXPECT_EQ(s.score, 0.0);
  }
  // All tied, so the order is the seeded random order.
  std::vector<double> zeros(pool_.size(), 0.0);
  const auto order = rank_by_score(pool_, zeros, pool_.size(), 9);
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(a[i].example.id, pool_[order[i]].id);
  options.samples = 1;
  EXPECT_THROW(select_examples(&qm_, &db, pool_, options), Error);
}

TEST_F(TinyModelTest, SeededSamplesDependOnlyOnSeedAndId) {
  AnswerOptions sampled;
  sampled.sampling.temperature = 1.0;
  sampled.sampling.n = 2;
  sampled.sampling.max_new_tokens = 6;
  sampled.seed = 4;
  sampled.batch_size = 6;
  const auto together = answer_questions(qm_, pool_, sampled);
  sampled.batch_size = 1;
  std::vector<Example> reversed(pool_.rbegin(), pool_.rend());
  const auto alone = answer_questions(qm_, reversed, sampled);
  for (size_t i = 0; i < pool_.size(); ++i) {
    const size_t j = pool_.size() - 1 - i;
    for (int s = 0; s < 2; ++s) EXPECT_EQ(together[i][s].tokens, alone[j][s].tokens) << pool_[i].id;
  }
}

}  // namespace
}  // namespace lathe::data
