// Select: random / entropy / disagreement scores over an unlabeled pool, and the ranking.
#include "data/select.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "data/rng.h"

namespace lathe::data {

SelectStrategy parse_select_strategy(const std::string& name) {
  if (name == "random") return SelectStrategy::Random;
  if (name == "entropy") return SelectStrategy::Entropy;
  if (name == "disagreement") return SelectStrategy::Disagreement;
  fail("unknown selection strategy '" + name + "' (valid: random, entropy, disagreement)");
}

std::string select_strategy_name(SelectStrategy strategy) {
  switch (strategy) {
    case SelectStrategy::Random: return "random";
    case SelectStrategy::Entropy: return "entropy";
    case SelectStrategy::Disagreement: return "disagreement";
  }
  return "random";
}

double vote_entropy(const std::vector<std::string>& votes) {
  if (votes.empty()) return 0;
  std::map<std::string, int> counts;
  for (const auto& v : votes) ++counts[v];
  const double k = static_cast<double>(votes.size());
  double h = 0;
  for (const auto& [cls, n] : counts) h -= n / k * std::log(n / k);
  return h;
}

std::string result_vote(const ExecutedAnswer& answer) {
  if (!answer.result) return "error";
  // Multiset of normalised rows: canonicalize(…, ordered = false) sorts them.
  const CanonicalResult canonical = canonicalize(*answer.result, /*ordered=*/false);
  nlohmann::json key = nlohmann::json::array();
  for (const auto& row : canonical.rows) {
    nlohmann::json cells = nlohmann::json::array();
    for (const auto& cell : row) cells.push_back(cell ? nlohmann::json(*cell) : nlohmann::json());
    key.push_back(std::move(cells));
  }
  // A truncated result is only a prefix: never the same answer as a complete one.
  return (answer.result->truncated ? "truncated:" : "rows:") +
         key.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

double mean_token_entropy(const Completion& completion) {
  if (completion.choices.empty()) return 0;
  double sum = 0;
  for (const auto& c : completion.choices) sum += c.entropy;
  return sum / static_cast<double>(completion.choices.size());
}

double random_score(const std::string& id, uint64_t seed) {
  Rng rng(seed ^ stable_hash(id));
  return static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
}

std::vector<size_t> rank_by_score(const std::vector<Example>& pool, const std::vector<double>& scores,
                                  size_t count, uint64_t seed) {
  if (scores.size() != pool.size()) fail("rank_by_score: one score per pool example expected");
  std::vector<double> tie(pool.size());
  for (size_t i = 0; i < pool.size(); ++i) tie[i] = random_score(pool[i].id, seed);
  std::vector<size_t> order(pool.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (scores[a] != scores[b]) return scores[a] > scores[b];
    if (tie[a] != tie[b]) return tie[a] > tie[b];
    return pool[a].id < pool[b].id;
  });
  order.resize(std::min(count, order.size()));
  return order;
}

std::vector<ScoredExample> random_scores(const std::vector<Example>& pool, uint64_t seed) {
  std::vector<ScoredExample> out;
  for (const auto& e : pool) out.push_back({e, random_score(e.id, seed), nlohmann::json::object()});
  return out;
}

namespace {

AnswerOptions answer_options(const SelectOptions& options) {
  AnswerOptions a;
  a.seed = options.seed;
  a.batch_size = options.batch_size;
  a.sampling.max_new_tokens = options.max_new_tokens;
  a.sampling.top_p = options.top_p;
  a.sampling.top_k = options.top_k;
  return a;
}

}  // namespace

std::vector<ScoredExample> entropy_scores(QuestionModel& qm, const std::vector<Example>& pool,
                                          const SelectOptions& options) {
  AnswerOptions a = answer_options(options);
  a.sampling.temperature = 0;  // the greedy answer
  a.sampling.top_p = 1.0;
  a.sampling.top_k = 0;
  a.sampling.entropy = true;
  const auto completions = answer_questions(qm, pool, a);
  std::vector<ScoredExample> out;
  for (size_t i = 0; i < pool.size(); ++i) {
    const Completion& c = completions[i][0];
    out.push_back({pool[i], mean_token_entropy(c), {{"tokens", c.tokens.size()}, {"finish_reason", c.finish_reason}}});
  }
  return out;
}

std::vector<ScoredExample> disagreement_from_samples(const SqlDatabase& db, const std::vector<Example>& pool,
                                                     const std::vector<std::vector<std::string>>& completions,
                                                     const SqlLimits& limits) {
  if (completions.size() != pool.size()) fail("disagreement: one list of samples per pool example expected");
  std::vector<ScoredExample> out;
  for (size_t i = 0; i < pool.size(); ++i) {
    std::vector<std::string> votes;
    int errors = 0;
    for (const auto& text : completions[i]) {
      votes.push_back(result_vote(execute_answer(db, text, limits)));
      errors += votes.back() == "error";
    }
    std::map<std::string, int> counts;
    for (const auto& v : votes) ++counts[v];
    int largest = 0;
    for (const auto& [cls, n] : counts) largest = std::max(largest, n);
    out.push_back({pool[i], vote_entropy(votes),
                   {{"samples", votes.size()},
                    {"errors", errors},
                    {"classes", counts.size()},
                    {"largest_class", largest}}});
  }
  return out;
}

std::vector<ScoredExample> disagreement_scores(QuestionModel& qm, const SqlDatabase& db,
                                               const std::vector<Example>& pool, const SelectOptions& options) {
  if (options.samples < 2) fail("disagreement needs at least 2 samples per question (got " +
                                std::to_string(options.samples) + ")");
  if (!(options.temperature > 0)) fail("disagreement needs a sampling temperature above 0");
  AnswerOptions a = answer_options(options);
  a.sampling.temperature = options.temperature;
  a.sampling.n = options.samples;
  const auto completions = answer_questions(qm, pool, a);
  std::vector<std::vector<std::string>> texts(pool.size());
  for (size_t i = 0; i < pool.size(); ++i) {
    for (const auto& c : completions[i]) texts[i].push_back(c.text);
  }
  return disagreement_from_samples(db, pool, texts, options.limits);
}

std::vector<ScoredExample> select_examples(QuestionModel* qm, const SqlDatabase* db, const std::vector<Example>& pool,
                                           const SelectOptions& options) {
  if (options.count < 1) fail("select: count must be at least 1 (got " + std::to_string(options.count) + ")");
  std::set<std::string> ids;
  for (const auto& e : pool) {
    if (!ids.insert(e.id).second) fail("select: the pool holds id '" + e.id + "' twice");
  }
  std::vector<ScoredExample> scored;
  switch (options.strategy) {
    case SelectStrategy::Random:
      scored = random_scores(pool, options.seed);
      break;
    case SelectStrategy::Entropy:
      if (!qm) fail("select: the entropy strategy needs a model (--model)");
      scored = entropy_scores(*qm, pool, options);
      break;
    case SelectStrategy::Disagreement:
      if (!qm || !db) fail("select: the disagreement strategy needs a model (--model) and a database (--db)");
      scored = disagreement_scores(*qm, *db, pool, options);
      break;
  }
  std::vector<double> scores;
  for (const auto& s : scored) scores.push_back(s.score);
  std::vector<ScoredExample> out;
  for (size_t i : rank_by_score(pool, scores, static_cast<size_t>(options.count), options.seed)) {
    out.push_back(std::move(scored[i]));
  }
  log::info("selected " + std::to_string(out.size()) + " of " + std::to_string(pool.size()) + " questions by " +
            select_strategy_name(options.strategy));
  return out;
}

void write_selection_jsonl(const std::string& path, const std::vector<ScoredExample>& selected,
                           SelectStrategy strategy) {
  std::string out;
  for (size_t i = 0; i < selected.size(); ++i) {
    nlohmann::json j = example_to_json(selected[i].example);
    j["rank"] = i + 1;
    j["score"] = selected[i].score;
    j["strategy"] = select_strategy_name(strategy);
    j["details"] = selected[i].details;
    out += to_json_line(j);
  }
  write_file_atomic(path, out);
}

std::vector<Example> exclude_ids(const std::vector<Example>& pool, const std::vector<Example>& exclude) {
  std::set<std::string> skip;
  for (const auto& e : exclude) skip.insert(e.id);
  std::vector<Example> out;
  for (const auto& e : pool) {
    if (!skip.count(e.id)) out.push_back(e);
  }
  return out;
}

}  // namespace lathe::data
