// Slot values shared by the question generators — collect.cpp (the inventory templates) and
// sql_corpus.cpp (the pretraining corpus): each slot has a Chinese surface, an English one and
// an SQL literal, and dates are worded the same way in both.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "data/rng.h"

namespace lathe::data {

// 'text' with single quotes doubled.
std::string sql_literal(const std::string& text);
// "2024-03-05" -> "2024年3月5日" / "March 5, 2024".
std::string zh_date(const std::string& date);
std::string en_date(const std::string& date);

struct QuestionSlots {
  std::map<std::string, std::string> zh, en, sql;
  void set(const std::string& key, const std::string& zh_text, const std::string& en_text, const std::string& sql_text);
  // {month}: the month holding `date` (2024年3月 / March 2024) with its month_start and
  // month_end SQL literals; {date_from}, {date_to}: up to 30 days either side of `date`, the
  // end no later than as_of_days (two draws from rng, from first).
  void set_dates(const std::string& date, int64_t as_of_days, Rng& rng);
};

}  // namespace lathe::data
