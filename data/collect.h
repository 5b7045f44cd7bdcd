// Collect: question/SQL pairs from template families slot-filled with the database's real
// values (each family has Chinese and English phrasings, several paraphrases each), and
// user-written questions imported from JSONL or CSV.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "data/example.h"
#include "data/sql_exec.h"

namespace lathe::data {

struct TemplateFamily {
  std::string name;
  std::vector<std::string> zh;  // paraphrases with {slot} placeholders
  std::vector<std::string> en;
  std::string sql;              // gold SQL with {slot} placeholders (filled with SQL literals)
};

const std::vector<TemplateFamily>& template_families();

struct CollectOptions {
  int per_family = 30;   // examples per family, alternating zh and en
  uint64_t seed = 1;
};

// Slot values come from randomly drawn vehicles, so most filters match at least one row;
// those that still return nothing are dropped later by label. Deterministic for a seed.
std::vector<Example> collect_template_questions(const SqlDatabase& db, const CollectOptions& options);

struct ImportReport {
  std::vector<Example> examples;
  std::vector<std::string> errors;  // "FILE:LINE: reason"
};

// JSONL lines {"question": ..., "sql"?: ..., "family"?: ..., "language"?: ...} or CSV with a
// header holding `question` and optionally `sql` (chosen by the file's extension). Examples
// without SQL are the unlabeled pool. Language defaults to zh when the question has CJK.
ImportReport import_user_questions(const std::string& path);

// Replaces {name} with values[name]; throws lathe::Error on a placeholder without a value.
std::string fill_template(const std::string& text, const std::map<std::string, std::string>& values);

}  // namespace lathe::data
