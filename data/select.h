// Select (active learning): from an unlabeled question pool, the N questions most worth
// labelling next, scored with the current model (+ adapter).
//
//   random        a seeded uniform score per question id (a seeded random sample of the pool,
//                 independent of pool order); needs no model.
//   entropy       mean over the greedy answer's tokens of the model's next-token entropy,
//                 H_t = -Σ_v p_t(v) ln p_t(v) of softmax(raw logits) (nats), up to and
//                 including the stop token or "</answer>".
//   disagreement  K answers sampled at a temperature; each answer's SQL (from <answer>) runs
//                 read-only on the database and votes for its result set; the score is the
//                 vote entropy H = -Σ_c (n_c / K) ln(n_c / K) over result classes. Two answers
//                 vote together when they return the same multiset of rows (column names and
//                 row order ignored, cells normalised as sql_exec.h does). Every answer without
//                 runnable SQL (no <answer>, an SQL error, a time-out) votes for ONE shared
//                 class "error": a model that fails the same way K times is consistent, not
//                 torn — its failures are visible as details.errors.
//
// Ties (frequent for vote entropy) are broken by the random strategy's score, so a pool
// where the model is equally sure everywhere degrades to a random sample, never to pool order.
// Selection never reads an example's sql or gold_result: a labelled pool (as in the
// experiment, where labels are revealed after selection) ranks exactly like the same pool
// without them. Departure from the textbook QBC: the committee is K samples of one model
// (Monte-Carlo disagreement), not K separately trained models.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/example.h"
#include "data/model_answers.h"
#include "data/sql_exec.h"

namespace lathe::data {

enum class SelectStrategy { Random, Entropy, Disagreement };

// "random" | "entropy" | "disagreement"; anything else is a lathe::Error listing them.
SelectStrategy parse_select_strategy(const std::string& name);
std::string select_strategy_name(SelectStrategy strategy);

struct SelectOptions {
  SelectStrategy strategy = SelectStrategy::Random;
  int64_t count = 50;          // N questions to select (fewer when the pool is smaller)
  uint64_t seed = 1;           // random scores, tie-breaks and sampling
  int samples = 8;             // disagreement: K
  double temperature = 1.0;    // disagreement: sampling temperature
  double top_p = 1.0;
  int top_k = 0;
  int max_new_tokens = 256;
  int batch_size = 8;          // questions per generate() call
  SqlLimits limits{200, 2.0};  // per sampled answer
};

struct ScoredExample {
  Example example;
  double score = 0;
  nlohmann::json details;  // strategy-specific: tokens, votes, errors …
};

// The pure pieces, for tests and other callers.
// Vote entropy (nats) of the classes named in `votes`; 0 for an empty list.
double vote_entropy(const std::vector<std::string>& votes);
// The class an answer votes for: "error" or a key of its normalised, sorted rows.
std::string result_vote(const ExecutedAnswer& answer);
// Mean of the per-token entropies of a completion generated with SamplingParams::entropy.
double mean_token_entropy(const Completion& completion);
// Uniform [0, 1) score of an id under a seed.
double random_score(const std::string& id, uint64_t seed);
// Indices of the `count` highest scores, best first; ties by the higher random_score of the
// example id, then by id.
std::vector<size_t> rank_by_score(const std::vector<Example>& pool, const std::vector<double>& scores,
                                  size_t count, uint64_t seed);

// Scores of every pool question. entropy_scores / disagreement_scores run the model;
// disagreement_from_samples is their shared second half (K completions per question).
std::vector<ScoredExample> random_scores(const std::vector<Example>& pool, uint64_t seed);
std::vector<ScoredExample> entropy_scores(QuestionModel& qm, const std::vector<Example>& pool,
                                          const SelectOptions& options);
std::vector<ScoredExample> disagreement_from_samples(const SqlDatabase& db, const std::vector<Example>& pool,
                                                     const std::vector<std::vector<std::string>>& completions,
                                                     const SqlLimits& limits);
std::vector<ScoredExample> disagreement_scores(QuestionModel& qm, const SqlDatabase& db,
                                               const std::vector<Example>& pool, const SelectOptions& options);

// Scores the pool with options.strategy and returns the top options.count, best first.
// qm and db may be null for random; other strategies throw lathe::Error without them.
// Ids must be unique in the pool.
std::vector<ScoredExample> select_examples(QuestionModel* qm, const SqlDatabase* db, const std::vector<Example>& pool,
                                           const SelectOptions& options);

// One JSONL row per selection: the example's own fields (so the file is an examples file
// that label/format read) plus "rank" (1-based), "score", "strategy" and "details";
// written atomically.
void write_selection_jsonl(const std::string& path, const std::vector<ScoredExample>& selected,
                           SelectStrategy strategy);

// The pool minus examples whose id appears in `exclude` (already labelled).
std::vector<Example> exclude_ids(const std::vector<Example>& pool, const std::vector<Example>& exclude);

}  // namespace lathe::data
