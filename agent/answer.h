// What the agent says back: the question's language, a templated answer composed from the
// result (the default: no second model call, nothing invented), the request that asks the
// model to phrase the answer instead (--answer-with-model), and the result as a table for
// terminals. English answers translate stored Chinese values with data::english_term
// (宝马 → BMW); numbers are shortened as the result comparison normalises them.
#pragma once
#include <string>
#include <vector>

#include "core/openai_client.h"
#include "data/sql_exec.h"

namespace lathe::agent {

// "zh" when the question holds CJK characters, else "en".
std::string question_language(const std::string& question);

// One or two sentences: no rows, a single value, one row, or the first `max_rows_listed`
// rows, with a note when the row cap truncated the result.
std::string template_answer(const data::SqlResult& result, const std::string& language, int max_rows_listed,
                            int64_t row_cap);

// The answer when no query succeeded.
std::string failure_answer(const std::string& language, const std::string& last_problem);

// Messages asking the model to answer `question` in its language from the query and its
// result (the first `max_rows` rows as tab-separated lines).
std::vector<ApiMessage> answer_messages(const std::string& question, const std::string& language,
                                        const std::string& sql, const data::SqlResult& result, int max_rows);

// An aligned text table (CJK characters count two columns), at most `max_rows` rows, with a
// last line saying how many rows were left out or that the row cap cut the result.
std::string format_result_table(const data::SqlResult& result, int max_rows);

}  // namespace lathe::agent
