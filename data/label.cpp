// Label: execute gold SQL, store canonical results, drop unusable examples with reasons.
#include "data/label.h"

#include "core/log.h"

namespace lathe::data {

LabelReport label_examples(const SqlDatabase& db, const std::vector<Example>& examples,
                           const LabelOptions& options) {
  LabelReport report;
  SqlLimits limits;
  limits.max_rows = options.max_result_rows;
  limits.timeout_seconds = options.timeout_seconds;
  for (const Example& example : examples) {
    auto drop = [&](const std::string& reason, const std::string& detail) {
      ++report.dropped[reason];
      // An imported row is named by its file and line, so the user can fix it there.
      const std::string who = example.source.empty() ? example.id : example.source + " (" + example.id + ")";
      const std::string message = who + ": " + reason + (detail.empty() ? "" : ": " + detail);
      report.messages.push_back(message);
      // Template drops are routine (a slot filter that matched nothing); imported ones are news.
      if (example.source.empty()) log::debug("label dropped " + message);
      else log::warn("label dropped " + message);
    };
    if (example.sql.find_first_not_of(" \t\r\n") == std::string::npos) {
      drop("no_sql", "");
      continue;
    }
    SqlResult result;
    try {
      result = db.query(example.sql, limits);
    } catch (const SqlError& e) {
      drop("sql_error", e.what());
      continue;
    }
    if (result.truncated) {
      drop("too_many_rows", "more than " + std::to_string(options.max_result_rows) + " rows");
      continue;
    }
    if (result.rows.empty()) {
      drop("empty_result", "");
      continue;
    }
    bool any_value = false;
    for (const auto& row : result.rows) {
      for (const auto& cell : row) any_value = any_value || cell.has_value();
    }
    if (!any_value) {
      drop("all_null", "");
      continue;
    }
    Example labelled = example;
    labelled.gold_result =
        canonical_to_json(canonicalize(result, has_top_level_order_by(example.sql), options.canonical));
    report.kept.push_back(std::move(labelled));
  }
  std::string summary = "labelled " + std::to_string(report.kept.size()) + " of " +
                        std::to_string(examples.size()) + " examples";
  for (const auto& [reason, count] : report.dropped) summary += ", " + reason + " " + std::to_string(count);
  log::info(summary);
  return report;
}

}  // namespace lathe::data
