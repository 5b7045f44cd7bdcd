// Label: run each example's gold SQL on the database and keep the canonical result; drop
// examples whose gold SQL is missing, fails, returns nothing or nothing useful (all NULL),
// or returns more rows than a target answer should hold. Every drop is logged with a reason.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "data/example.h"
#include "data/sql_exec.h"

namespace lathe::data {

struct LabelOptions {
  int64_t max_result_rows = 200;   // larger results make poor targets for reward comparison
  double timeout_seconds = 2.0;
  CanonicalOptions canonical;
};

struct LabelReport {
  std::vector<Example> kept;
  std::map<std::string, int> dropped;  // reason -> count: no_sql sql_error empty_result all_null too_many_rows
  std::vector<std::string> messages;   // "<id>: <reason>: <detail>"
};

LabelReport label_examples(const SqlDatabase& db, const std::vector<Example>& examples,
                           const LabelOptions& options = {});

}  // namespace lathe::data
