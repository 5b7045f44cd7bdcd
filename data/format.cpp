// Format: system prompt, answer format and extraction, plan sentences, SFT/GRPO rows.
#include "data/format.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/inventory_db.h"

namespace lathe::data {

std::string sql_system_prompt(const std::string& subject, const std::string& schema_text,
                              const std::string& conventions, const std::string& dialect) {
  return "You are a SQL assistant for " + subject + ". Staff ask questions in Chinese or English; answer each with one " +
         dialect + " SELECT query over this schema:\n\n" +
         schema_text + "\nConventions: " + conventions +
         "\n\nRespond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>\n";
}

std::string inventory_system_prompt(const std::string& schema_text) {
  return inventory_system_prompt(schema_text, "SQLite");
}

std::string inventory_system_prompt(const std::string& schema_text, const std::string& dialect) {
  return sql_system_prompt(
      "a car dealer group's vehicle inventory", schema_text,
      "brand, model, color, city, region and store names are stored in Chinese "
      "(e.g. 宝马, 凯美瑞, 白色, 上海, 华东, 上海浦东店), also when the question names them in English "
      "(BMW → '宝马'). status is one of 'in_stock', 'reserved', 'sold', 'in_transit'; body_type one of "
      "'sedan', 'suv', 'mpv', 'hatchback'; fuel_type one of 'gasoline', 'hybrid', 'phev', 'ev'. "
      "Dates are 'YYYY-MM-DD' text; guide_price is in CNY (1万 = 10000). Days in stock count from "
      "pickup_date to meta.as_of_date: julianday((SELECT value FROM meta WHERE key = 'as_of_date')) "
      "- julianday(pickup_date).",
      dialect);
}

std::string dataset_system_prompt(const std::string& override_path) {
  if (override_path.empty()) return inventory_system_prompt(inventory_schema_sql());
  std::string text = read_file(override_path);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) fail(override_path + ": the system prompt file is empty");
  return text;
}

std::string schema_with_samples(const std::string& schema_text, const std::vector<ColumnSamples>& samples) {
  constexpr size_t kMaxValueBytes = 40;
  std::string out = schema_text;
  if (!out.empty() && out.back() != '\n') out += "\n";
  bool any = false;
  for (const auto& s : samples) {
    if (s.values.empty()) continue;
    if (!any) out += "-- Some stored values per text column:\n";
    any = true;
    out += "-- " + s.table + "." + s.column + ":";
    for (size_t i = 0; i < s.values.size(); ++i) {
      std::string v = s.values[i];
      if (v.size() > kMaxValueBytes) {
        size_t cut = kMaxValueBytes;
        while (cut > 0 && (static_cast<unsigned char>(v[cut]) & 0xC0) == 0x80) --cut;  // keep UTF-8 whole
        v = v.substr(0, cut) + "…";
      }
      std::string quoted = "'";
      for (char c : v) {
        if (c == '\n' || c == '\r') c = ' ';
        quoted += c;
        if (c == '\'') quoted += '\'';
      }
      out += (i ? ", " : " ") + quoted + "'";
    }
    out += "\n";
  }
  return out;
}

std::string format_answer(const std::string& reasoning, const std::string& sql) {
  return "<reasoning>\n" + reasoning + "\n</reasoning>\n<answer>\n" + sql + "\n</answer>\n";
}

namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

std::optional<std::string> extract_answer_sql(const std::string& completion) {
  const std::string open = "<answer>", close = "</answer>";
  // The last block: reasoning may quote the format or draft an answer before the final one.
  size_t start = completion.rfind(open);
  while (start != std::string::npos) {
    const size_t end = completion.find(close, start + open.size());
    if (end != std::string::npos) {
      std::string sql = trim(completion.substr(start + open.size(), end - start - open.size()));
      if (sql.rfind("```", 0) == 0) {
        const size_t nl = sql.find('\n');
        sql = nl == std::string::npos ? "" : sql.substr(nl + 1);
        const size_t fence = sql.rfind("```");
        if (fence != std::string::npos) sql = sql.substr(0, fence);
        sql = trim(sql);
      }
      while (!sql.empty() && (sql.back() == ';' || std::isspace(static_cast<unsigned char>(sql.back())))) {
        sql.pop_back();
      }
      if (sql.empty()) return std::nullopt;
      return sql;
    }
    // An unclosed last block (truncated generation): try the previous one.
    if (start == 0) break;
    start = completion.rfind(open, start - 1);
  }
  return std::nullopt;
}

const SqlPlanNames& inventory_plan_names() {
  static const SqlPlanNames names = {
      {"vehicles", "stores", "meta"},
      {"vehicle_id", "brand", "model", "model_year", "body_type", "fuel_type", "color", "pickup_date", "guide_price",
       "status", "store_id", "mileage_km", "name", "city", "region"},
      "库龄用 meta.as_of_date 减 pickup_date 计算",
      "days in stock = meta.as_of_date - pickup_date"};
  return names;
}

std::string describe_sql_plan(const std::string& sql, const std::string& language) {
  return describe_sql_plan(sql, language, inventory_plan_names());
}

std::string describe_sql_plan(const std::string& sql, const std::string& language, const SqlPlanNames& names) {
  // Tokenise into words and single symbols, dropping quoted literals.
  std::vector<std::string> tokens;
  for (size_t i = 0; i < sql.size();) {
    const char c = sql[i];
    if (c == '\'') {
      size_t j = i + 1;
      while (j < sql.size()) {
        if (sql[j] == '\'' && j + 1 < sql.size() && sql[j + 1] == '\'') {
          j += 2;  // an escaped quote inside the literal
        } else if (sql[j] == '\'') {
          break;
        } else {
          ++j;
        }
      }
      tokens.push_back("'");
      i = j + 1;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.') {
      size_t j = i;
      while (j < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '_' || sql[j] == '.')) ++j;
      tokens.push_back(sql.substr(i, j - i));
      i = j;
    } else {
      if (!std::isspace(static_cast<unsigned char>(c))) tokens.push_back(std::string(1, c));
      ++i;
    }
  }
  const std::set<std::string>& columns = names.columns;
  const std::set<std::string>& tables = names.tables;
  std::vector<std::string> used_tables, filters, aggregates, groups, orders;
  auto add = [](std::vector<std::string>& v, const std::string& s) {
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
  };
  std::string clause, limit;
  bool days_in_stock = false, distinct = false;
  std::vector<std::string> outer_clauses;  // a subquery's clauses end with its parenthesis
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == "(") {
      outer_clauses.push_back(clause);
      continue;
    }
    if (tokens[i] == ")") {
      if (!outer_clauses.empty()) {
        clause = outer_clauses.back();
        outer_clauses.pop_back();
      }
      continue;
    }
    std::string up = tokens[i];
    std::transform(up.begin(), up.end(), up.begin(), [](unsigned char ch) { return std::toupper(ch); });
    std::string bare = tokens[i];
    if (const size_t dot = bare.find('.'); dot != std::string::npos) bare = bare.substr(dot + 1);
    if (up == "SELECT" || up == "WHERE" || up == "GROUP" || up == "ORDER" || up == "LIMIT" || up == "FROM" ||
        up == "JOIN" || up == "HAVING") {
      clause = up;
      if (up == "LIMIT" && i + 1 < tokens.size()) limit = tokens[i + 1];
      continue;
    }
    if (up == "JULIANDAY") days_in_stock = true;
    if (up == "DISTINCT") distinct = true;
    if ((up == "COUNT" || up == "AVG" || up == "SUM" || up == "MIN" || up == "MAX") && i + 1 < tokens.size() &&
        tokens[i + 1] == "(") {
      add(aggregates, up);
    }
    if ((clause == "FROM" || clause == "JOIN") && tables.count(bare)) add(used_tables, bare);
    if (!columns.count(bare)) continue;
    if (clause == "WHERE" || clause == "HAVING") add(filters, bare);
    if (clause == "GROUP") add(groups, bare);
    if (clause == "ORDER") add(orders, bare);
  }
  if (days_in_stock && std::find(used_tables.begin(), used_tables.end(), "meta") == used_tables.end()) {
    add(used_tables, "meta");
  }
  const bool zh = language == "zh";
  auto join = [&](const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? (zh ? "、" : ", ") : "") + v[i];
    return out;
  };
  std::string out;
  if (zh) {
    out = "查询 " + join(used_tables) + " 表";
    if (!filters.empty()) out += "，按 " + join(filters) + " 筛选";
    if (days_in_stock) out += "，" + names.age_zh;
    if (distinct) out += "，去重";
    if (!groups.empty()) out += "，按 " + join(groups) + " 分组";
    if (!aggregates.empty()) out += "，用 " + join(aggregates) + " 汇总";
    if (!orders.empty()) out += "，按 " + join(orders) + " 排序";
    if (!limit.empty()) out += "，取前 " + limit + " 条";
    out += "。";
  } else {
    out = "Query the " + join(used_tables) + (used_tables.size() > 1 ? " tables" : " table");
    if (!filters.empty()) out += ", filter on " + join(filters);
    if (days_in_stock) out += ", " + names.age_en;
    if (distinct) out += ", distinct values";
    if (!groups.empty()) out += ", group by " + join(groups);
    if (!aggregates.empty()) out += ", aggregate with " + join(aggregates);
    if (!orders.empty()) out += ", order by " + join(orders);
    if (!limit.empty()) out += ", keep the first " + limit;
    out += ".";
  }
  return out;
}

nlohmann::json sft_row(const Example& example, const std::string& system_prompt) {
  const std::string answer = format_answer(describe_sql_plan(example.sql, example.language), example.sql);
  return {{"messages",
           {{{"role", "system"}, {"content", system_prompt}},
            {{"role", "user"}, {"content", example.question}},
            {{"role", "assistant"}, {"content", answer}}}}};
}

nlohmann::json grpo_row(const Example& example, const std::string& system_prompt) {
  if (example.gold_result.is_null()) fail("example '" + example.id + "' has no gold result; run label first");
  return {{"id", example.id},
          {"prompt",
           {{{"role", "system"}, {"content", system_prompt}}, {{"role", "user"}, {"content", example.question}}}},
          {"gold_sql", example.sql},
          {"gold_result", example.gold_result},
          {"family", example.family},
          {"language", example.language}};
}

void write_sft_jsonl(const std::string& path, const std::vector<Example>& examples,
                     const std::string& system_prompt) {
  std::string out;
  for (const auto& e : examples) out += to_json_line(sft_row(e, system_prompt));
  write_file_atomic(path, out);
}

void write_grpo_jsonl(const std::string& path, const std::vector<Example>& examples,
                      const std::string& system_prompt) {
  std::string out;
  for (const auto& e : examples) out += to_json_line(grpo_row(e, system_prompt));
  write_file_atomic(path, out);
}

}  // namespace lathe::data
