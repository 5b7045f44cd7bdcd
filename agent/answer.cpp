// Templated answers, the phrase-it-yourself request, and terminal tables (see answer.h).
#include "agent/answer.h"

#include <algorithm>

#include "data/inventory_db.h"
#include "data/text_io.h"

namespace lathe::agent {

namespace {

std::string cell_text(const std::optional<std::string>& cell, bool english) {
  if (!cell) return "NULL";
  // Only fractions are shortened (346789.12345678901 → 346789.12); "0012" keeps its zeros.
  const std::string normal = cell->find('.') != std::string::npos ? data::normalize_cell(*cell) : *cell;
  return english ? data::english_term(normal) : normal;
}

std::string row_text(const data::SqlRow& row, bool english) {
  std::string out;
  for (size_t c = 0; c < row.size(); ++c) out += (c ? " " : "") + cell_text(row[c], english);
  return out;
}

int display_width(const std::string& text) {
  int width = 0;
  for (uint32_t cp : data::utf8_decode(text)) {
    const bool wide = (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
                      (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
                      (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
                      (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD);
    width += wide ? 2 : 1;
  }
  return width;
}

}  // namespace

std::string question_language(const std::string& question) { return data::contains_cjk(question) ? "zh" : "en"; }

std::string template_answer(const data::SqlResult& result, const std::string& language, int max_rows_listed,
                            int64_t row_cap) {
  const bool zh = language == "zh";
  const auto& rows = result.rows;
  std::string out;
  if (rows.empty()) {
    out = zh ? "没有查到符合条件的记录。" : "No matching records were found.";
  } else if (rows.size() == 1 && rows[0].size() == 1) {
    out = zh ? "查询结果是 " + cell_text(rows[0][0], false) + "。" : "The answer is " + cell_text(rows[0][0], true) + ".";
  } else if (rows.size() == 1) {
    std::string pairs;
    for (size_t c = 0; c < rows[0].size(); ++c) {
      const std::string name = c < result.columns.size() ? result.columns[c] : "";
      pairs += (c ? (zh ? "，" : ", ") : "") + name + " " + cell_text(rows[0][c], !zh);
    }
    out = zh ? "查询结果：" + pairs + "。" : "Result: " + pairs + ".";
  } else {
    const size_t listed = std::min(rows.size(), static_cast<size_t>(std::max(1, max_rows_listed)));
    std::string list;
    for (size_t r = 0; r < listed; ++r) list += (r ? (zh ? "；" : "; ") : "") + row_text(rows[r], !zh);
    const std::string count = std::to_string(rows.size());
    if (zh) {
      out = "共 " + count + " 条结果" + (listed < rows.size() ? "，前 " + std::to_string(listed) + " 条" : "") + "：" +
            list + (listed < rows.size() ? "；……" : "。");
    } else {
      out = count + " rows" + (listed < rows.size() ? ", the first " + std::to_string(listed) : "") + ": " + list +
            (listed < rows.size() ? "; …" : ".");
    }
  }
  if (result.truncated) {
    const std::string cap = std::to_string(row_cap);
    out += zh ? "（结果超过 " + cap + " 行上限，只读取了前 " + cap + " 行。）"
              : " (The result has more than " + cap + " rows; only the first " + cap + " were read.)";
  }
  return out;
}

std::string failure_answer(const std::string& language, const std::string& last_problem) {
  return language == "zh" ? "抱歉，没能写出可以执行的查询（" + last_problem + "）。"
                          : "Sorry, I could not write a query that runs (" + last_problem + ").";
}

std::vector<ApiMessage> answer_messages(const std::string& question, const std::string& language,
                                        const std::string& sql, const data::SqlResult& result, int max_rows) {
  const bool zh = language == "zh";
  std::string table;
  for (size_t c = 0; c < result.columns.size(); ++c) table += (c ? "\t" : "") + result.columns[c];
  table += "\n";
  const size_t shown = std::min(result.rows.size(), static_cast<size_t>(std::max(0, max_rows)));
  for (size_t r = 0; r < shown; ++r) {
    for (size_t c = 0; c < result.rows[r].size(); ++c) table += (c ? "\t" : "") + cell_text(result.rows[r][c], false);
    table += "\n";
  }
  if (shown < result.rows.size() || result.truncated) {
    table += "(" + std::to_string(result.rows.size()) + (result.truncated ? "+" : "") + " rows in all)\n";
  }
  const std::string system =
      std::string("You answer questions from a car dealer group's staff about the vehicle inventory. Reply in ") +
      (zh ? "Chinese" : "English") +
      " with one or two short sentences that state what the query result says. Use only the result; do not "
      "show SQL, do not guess beyond it." +
      (zh ? "" : " Give brand, model, colour and city names in English.");
  const std::string user = "Question: " + question + "\nSQL: " + sql + "\nResult:\n" + table;
  return {{"system", system}, {"user", user}};
}

std::string format_result_table(const data::SqlResult& result, int max_rows) {
  const size_t shown = std::min(result.rows.size(), static_cast<size_t>(std::max(0, max_rows)));
  const size_t ncol = result.columns.size();
  std::vector<std::vector<std::string>> cells;
  cells.push_back(result.columns);
  for (size_t r = 0; r < shown; ++r) {
    std::vector<std::string> line;
    for (size_t c = 0; c < ncol; ++c) line.push_back(c < result.rows[r].size() ? cell_text(result.rows[r][c], false) : "");
    cells.push_back(std::move(line));
  }
  std::vector<int> width(ncol, 0);
  for (const auto& line : cells) {
    for (size_t c = 0; c < ncol; ++c) width[c] = std::max(width[c], display_width(line[c]));
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& line) {
    for (size_t c = 0; c < ncol; ++c) {
      out += (c ? " | " : "") + line[c];
      if (c + 1 < ncol) out += std::string(width[c] - display_width(line[c]), ' ');
    }
    out += "\n";
  };
  emit(cells[0]);
  for (size_t c = 0; c < ncol; ++c) out += (c ? "-+-" : "") + std::string(width[c], '-');
  out += "\n";
  for (size_t r = 1; r < cells.size(); ++r) emit(cells[r]);
  if (shown < result.rows.size()) out += "(" + std::to_string(result.rows.size() - shown) + " more rows)\n";
  if (result.truncated) out += "(stopped at the row cap of " + std::to_string(result.rows.size()) + " rows; there are more)\n";
  if (result.rows.empty()) out += "(no rows)\n";
  return out;
}

}  // namespace lathe::agent
