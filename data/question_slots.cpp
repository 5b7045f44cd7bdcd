// Shared question slots: see question_slots.h.
#include "data/question_slots.h"

#include <algorithm>
#include <cstdio>

#include "data/inventory_db.h"

namespace lathe::data {

namespace {
const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                         "July",    "August",   "September", "October", "November", "December"};
}  // namespace

std::string sql_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

std::string zh_date(const std::string& d) {
  return d.substr(0, 4) + "年" + std::to_string(std::stoi(d.substr(5, 2))) + "月" +
         std::to_string(std::stoi(d.substr(8, 2))) + "日";
}

std::string en_date(const std::string& d) {
  return std::string(kMonths[std::stoi(d.substr(5, 2)) - 1]) + " " + std::to_string(std::stoi(d.substr(8, 2))) +
         ", " + d.substr(0, 4);
}

void QuestionSlots::set(const std::string& key, const std::string& zh_text, const std::string& en_text,
                        const std::string& sql_text) {
  zh[key] = zh_text;
  en[key] = en_text;
  sql[key] = sql_text;
}

void QuestionSlots::set_dates(const std::string& date, int64_t as_of_days, Rng& rng) {
  const int year = std::stoi(date.substr(0, 4));
  const int month = std::stoi(date.substr(5, 2));
  char next[40];
  std::snprintf(next, sizeof next, "%04d-%02d-01", month == 12 ? year + 1 : year, month == 12 ? 1 : month + 1);
  set("month", std::to_string(year) + "年" + std::to_string(month) + "月",
      std::string(kMonths[month - 1]) + " " + std::to_string(year), "");
  sql["month_start"] = sql_literal(date.substr(0, 8) + "01");
  sql["month_end"] = sql_literal(next);

  const int64_t day = date_to_days(date);
  const std::string from = days_to_date(day - rng.between(0, 30));
  const std::string to = days_to_date(std::min(day + rng.between(0, 30), as_of_days));
  set("date_from", zh_date(from), en_date(from), sql_literal(from));
  set("date_to", zh_date(to), en_date(to), sql_literal(to));
}

}  // namespace lathe::data
