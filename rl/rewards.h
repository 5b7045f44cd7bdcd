// Reward functions for GRPO, pluggable by name. Each scores one group (the G completions of
// one prompt) with the whole dataset row at hand (prompt messages, gold_sql, gold_result, …).
// A registry maps names to factories and declares each reward's options, so the recipe's
// config can offer `rewards.<name>.weight` and `rewards.<name>.<option>` keys for every
// registered reward and reject unknown names.
//
// Built in (scores from ../shared/docs/INTEROP.md, the GSM8K GRPO demo recipe):
//   sql_execution  2.0 when the <answer> SQL returns the gold result set (data/sql_exec.h
//                  rules: order-insensitive unless the gold query orders, numeric tolerance),
//                  optional partial credit 2.0 × row-multiset F1, 0 for SQL that fails.
//   xml_strict     0.5 for ^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$
//   xml_loose      0.5 when the completion starts with <reasoning>.*?</reasoning>\s*<answer>.*?</answer>
//   xml_count      the recipe's per-tag counting reward (max 0.5), lengths in code points.
//   sql_literals   1.0 × F1 of the <answer> SQL's constants against the gold SQL's (the values
//                  a query must copy from the question: brands, dates, prices, ids).
//   answer_match   1.0 when the <answer> text equals the row's "answer" (normalised).
//   answer_contains  fraction of the row's "required_terms" present in the <answer> text.
//   command        an external program: one JSON line {"row", "completions"} per group in,
//                  one line {"scores": [...]} out; crashes, timeouts and bad answers are errors.
// Departure from the recipe: xml_strict / xml_loose let `.` cross newlines by default
// (dotall: true, the evident intent); dotall: false reproduces the recipe's re.match without
// DOTALL exactly, including Python's `$` also matching before one final "\n".
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lathe::rl {

class RewardFunction {
 public:
  virtual ~RewardFunction() = default;
  // One score per completion. `row` is the dataset row the prompt came from.
  virtual std::vector<double> score(const nlohmann::json& row, const std::vector<std::string>& completions) = 0;
};

// One option a reward accepts: config key rewards.<reward>.<key>.
struct RewardOption {
  std::string key;
  nlohmann::json default_value;      // its JSON type is the option's type (bool, number, string)
  std::string doc;
  std::vector<std::string> choices;  // strings only; empty = any
};

struct RewardEntry {
  std::string name;
  std::string doc;
  std::vector<RewardOption> options;
  // options: every declared option, resolved (defaults filled in).
  std::function<std::unique_ptr<RewardFunction>(const nlohmann::json& options)> create;
};

// Adds a reward to the registry (tests and users add their own). Throws on a taken name.
void register_reward(RewardEntry entry);
// Every registered name, sorted.
std::vector<std::string> reward_names();
// Throws lathe::Error naming the valid rewards when `name` is unknown.
const RewardEntry& find_reward(const std::string& name);
// Creates reward `name`; options missing from `options` take their defaults, unknown
// options throw.
std::unique_ptr<RewardFunction> make_reward(const std::string& name, const nlohmann::json& options = nlohmann::json::object());

// The scorer a run uses: named rewards with weights; total = Σ weight_k · reward_k.
struct WeightedReward {
  std::string name;
  double weight = 1.0;
  std::unique_ptr<RewardFunction> fn;
};

struct GroupScores {
  std::vector<std::vector<double>> per_reward;  // [reward][completion], unweighted
  std::vector<double> total;                    // [completion], weighted sum
};

GroupScores score_group(std::vector<WeightedReward>& rewards, const nlohmann::json& row,
                        const std::vector<std::string>& completions);

// The format checks themselves, for tests and other callers.
bool xml_strict_matches(const std::string& text, bool dotall);
bool xml_loose_matches(const std::string& text, bool dotall);
double xml_count_score(const std::string& text);
// Unicode code points in UTF-8 text (what Python's len() counts).
int64_t code_point_length(const std::string& text);
// The constants of an SQL query, in order: string literals as "'" + their text ('' unescaped),
// numbers as "#" + their value (%.15g: 5, 5.0 and 5e0 read alike; 0x hex as decimal).
// Quoted identifiers ("x", `x`, [x]), comments and digits inside names are not constants.
std::vector<std::string> sql_literals(const std::string& sql);
// The recipe's extract_xml_answer: text after the last "<answer>" (the whole text if none),
// cut at the next "</answer>", stripped of whitespace.
std::string extract_xml_answer(const std::string& text);

}  // namespace lathe::rl
