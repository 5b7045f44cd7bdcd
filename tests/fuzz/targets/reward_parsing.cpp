// Fuzz target: what GRPO's rewards read. The input is a dataset row (JSON) and up to three
// completions, separated by "----" lines; when the first part is not JSON, a fixed row is used
// and the whole input is the completion. Each built-in reward but `command` (an external
// program) scores the group — sql_execution against the tiny inventory database — and the
// format checks and answer extraction run on every completion.
// Invariant: every score is a finite number.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "data/format.h"
#include "rl/rewards.h"
#include "tests/fuzz/fuzz_target.h"

namespace lathe::fuzz {

namespace {

// One scorer per reward, so that one reward rejecting a row does not keep the others from it.
std::vector<std::vector<rl::WeightedReward>>& fuzzed_rewards() {
  static std::vector<std::vector<rl::WeightedReward>> rewards = [] {
    std::vector<std::vector<rl::WeightedReward>> out;
    auto add = [&](const std::string& name, const nlohmann::json& options) {
      out.emplace_back();
      out.back().push_back({name, 1.0, rl::make_reward(name, options)});
    };
    for (const char* name : {"xml_strict", "xml_loose", "xml_count", "answer_match", "answer_contains"})
      add(name, nlohmann::json::object());
    add("xml_strict", {{"dotall", false}});
    add("sql_execution",
        {{"database", tiny_inventory_db()}, {"partial_credit", "row_f1"}, {"timeout_seconds", 0.2}, {"max_rows", 50}});
    return out;
  }();
  return rewards;
}

}  // namespace

void fuzz_reward_parsing(const std::string& input) {
  std::vector<std::string> parts = split_parts(input, 4);
  nlohmann::json row = nlohmann::json::parse(parts[0], nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> completions(parts.begin() + 1, parts.end());
  if (row.is_discarded() || completions.empty()) {
    row = {{"answer", "3"},
           {"required_terms", {"宝马", "上海"}},
           {"gold_result", {{"columns", {"n"}}, {"ordered", false}, {"rows", {{"3"}}}}}};
    completions = {input};
  }
  for (const auto& c : completions) {
    rl::xml_strict_matches(c, true);
    rl::xml_strict_matches(c, false);
    rl::xml_loose_matches(c, true);
    rl::xml_loose_matches(c, false);
    rl::xml_count_score(c);
    rl::code_point_length(c);
    rl::extract_xml_answer(c);
    data::extract_answer_sql(c);
  }
  for (auto& scorer : fuzzed_rewards()) {
    unless_rejected([&] {
      for (double score : rl::score_group(scorer, row, completions).total) {
        if (!std::isfinite(score)) {
          std::fprintf(stderr, "lathe fuzz: reward %s scored %f\n", scorer[0].name.c_str(), score);
          std::abort();
        }
      }
    });
  }
}

}  // namespace lathe::fuzz
