// Agent evaluation: question files, scoring, summaries, JSON and Markdown (see eval.h).
#include "agent/eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include "agent/answer.h"
#include "core/error.h"
#include "core/log.h"
#include "data/text_io.h"

namespace lathe::agent {

namespace {

std::string text_field(const nlohmann::json& row, const char* key, const std::string& where) {
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) return "";
  if (!it->is_string()) fail(where + ": \"" + key + "\" must be a string");
  return it->get<std::string>();
}

std::string percent(const Tally& t) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f%% (%d/%d)", 100.0 * t.accuracy(), t.correct, t.n);
  return buf;
}

nlohmann::json tally_json(const Tally& t) { return {{"n", t.n}, {"correct", t.correct}, {"accuracy", t.accuracy()}}; }

double nearest_rank(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

}  // namespace

std::vector<EvalQuestion> read_eval_questions(const std::string& path) {
  std::vector<EvalQuestion> out;
  for (const auto& line : data::read_jsonl_lines(path)) {
    const std::string where = path + ":" + std::to_string(line.line);
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(line.text);
    } catch (const nlohmann::json::exception& e) {
      fail(where + ": invalid JSON (" + e.what() + ")");
    }
    if (!row.is_object()) fail(where + ": expected a JSON object");
    EvalQuestion q;
    q.where = where;
    q.question = text_field(row, "question", where);
    if (q.question.find_first_not_of(" \t\r\n") == std::string::npos) fail(where + ": missing \"question\"");
    q.gold_sql = text_field(row, "sql", where);
    if (q.gold_sql.empty()) q.gold_sql = text_field(row, "gold_sql", where);
    if (q.gold_sql.empty()) fail(where + ": missing \"sql\" (the gold query; \"gold_sql\" works too)");
    q.id = text_field(row, "id", where);
    if (q.id.empty()) q.id = "q" + std::to_string(line.line);
    q.family = text_field(row, "family", where);
    if (q.family.empty()) q.family = "user";
    q.language = text_field(row, "language", where);
    if (q.language.empty()) q.language = question_language(q.question);
    if (q.language != "zh" && q.language != "en") fail(where + ": \"language\" must be zh or en");
    if (auto it = row.find("gold_result"); it != row.end() && !it->is_null()) {
      try {
        q.gold = data::canonical_from_json(*it);
      } catch (const Error& e) {
        fail(where + ": " + e.what());
      }
    }
    out.push_back(std::move(q));
  }
  if (out.empty()) fail(path + ": no questions");
  return out;
}

void prepare_gold(std::vector<EvalQuestion>& questions, SqlExecutor& executor) {
  for (auto& q : questions) {
    if (q.gold) continue;
    const QueryOutcome gold = executor.run(q.gold_sql);
    if (!gold.ok()) fail(q.where + ": the gold SQL did not run: " + gold.message);
    if (gold.result.truncated) {
      fail(q.where + ": the gold result has more than " + std::to_string(executor.limits().max_rows) +
           " rows (raise guard.max_rows)");
    }
    q.gold = data::canonicalize(gold.result, data::has_top_level_order_by(q.gold_sql));
  }
}

EvalItem score_answer(const EvalQuestion& question, const AgentAnswer& answer) {
  if (!question.gold) fail(question.where + ": no gold result (prepare_gold first)");
  EvalItem item;
  item.id = question.id;
  item.family = question.family;
  item.language = question.language;
  item.answered = answer.ok;
  item.attempts = static_cast<int>(answer.attempts.size());
  for (const auto& a : answer.attempts) {
    item.refusals += a.status == "refused";
    item.sql_errors += a.status == "error";
    item.stopped += a.status == "stopped";
    item.no_sql += a.status == "no_sql";
  }
  item.sql = answer.sql;
  if (!answer.ok && !answer.attempts.empty()) item.problem = answer.attempts.back().message;
  item.latency_ms = answer.latency_ms;
  item.usage = answer.usage;
  item.correct = answer.ok && !answer.result.truncated &&
                 data::results_match(*question.gold, data::canonicalize(answer.result, question.gold->ordered));
  return item;
}

ModelEval summarize(const std::string& model, std::vector<EvalItem> items) {
  ModelEval m;
  m.model = model;
  std::vector<double> latencies;
  for (const auto& item : items) {
    for (Tally* t : {&m.overall, &m.per_family[item.family], &m.per_language[item.language]}) {
      t->n += 1;
      t->correct += item.correct;
    }
    m.questions_retried += item.attempts > 1;
    m.retries_used += std::max(0, item.attempts - 1);
    m.guard_refusals += item.refusals;
    m.sql_errors += item.sql_errors;
    m.stopped += item.stopped;
    m.no_sql += item.no_sql;
    m.unanswered += !item.answered;
    m.prompt_tokens += item.usage.prompt_tokens;
    m.completion_tokens += item.usage.completion_tokens;
    latencies.push_back(item.latency_ms);
  }
  std::sort(latencies.begin(), latencies.end());
  if (!latencies.empty()) {
    double sum = 0;
    for (double l : latencies) sum += l;
    m.latency_mean_ms = sum / latencies.size();
    m.latency_p50_ms = nearest_rank(latencies, 0.5);
    m.latency_p90_ms = nearest_rank(latencies, 0.9);
    m.latency_max_ms = latencies.back();
  }
  m.items = std::move(items);
  return m;
}

ModelEval evaluate_model(Agent& agent, const std::string& model, const std::vector<EvalQuestion>& questions) {
  std::vector<EvalItem> items;
  for (size_t i = 0; i < questions.size(); ++i) {
    const AgentAnswer answer = agent.ask(questions[i].question);
    items.push_back(score_answer(questions[i], answer));
    if ((i + 1) % 25 == 0 || i + 1 == questions.size()) {
      log::info(model + ": " + std::to_string(i + 1) + "/" + std::to_string(questions.size()) + " questions");
    }
  }
  return summarize(model, std::move(items));
}

nlohmann::json eval_to_json(const std::vector<ModelEval>& models) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& m : models) {
    nlohmann::json families = nlohmann::json::object(), languages = nlohmann::json::object(),
                   items = nlohmann::json::array();
    for (const auto& [name, t] : m.per_family) families[name] = tally_json(t);
    for (const auto& [name, t] : m.per_language) languages[name] = tally_json(t);
    for (const auto& i : m.items) {
      items.push_back({{"id", i.id},
                       {"family", i.family},
                       {"language", i.language},
                       {"correct", i.correct},
                       {"answered", i.answered},
                       {"attempts", i.attempts},
                       {"refusals", i.refusals},
                       {"sql_errors", i.sql_errors},
                       {"stopped", i.stopped},
                       {"no_sql", i.no_sql},
                       {"sql", i.sql},
                       {"problem", i.problem},
                       {"latency_ms", i.latency_ms},
                       {"tokens", {{"prompt", i.usage.prompt_tokens}, {"completion", i.usage.completion_tokens}}}});
    }
    out.push_back({{"model", m.model},
                   {"n", m.overall.n},
                   {"correct", m.overall.correct},
                   {"execution_accuracy", m.overall.accuracy()},
                   {"per_family", families},
                   {"per_language", languages},
                   {"questions_retried", m.questions_retried},
                   {"retries_used", m.retries_used},
                   {"guard_refusals", m.guard_refusals},
                   {"sql_errors", m.sql_errors},
                   {"stopped", m.stopped},
                   {"no_sql", m.no_sql},
                   {"unanswered", m.unanswered},
                   {"latency_ms",
                    {{"mean", m.latency_mean_ms}, {"p50", m.latency_p50_ms}, {"p90", m.latency_p90_ms}, {"max", m.latency_max_ms}}},
                   {"tokens", {{"prompt", m.prompt_tokens}, {"completion", m.completion_tokens}}},
                   {"items", items}});
  }
  return {{"models", out}};
}

std::string eval_markdown(const std::vector<ModelEval>& models) {
  std::string out = "| metric |";
  std::string rule = "|---|";
  for (const auto& m : models) {
    out += " " + m.model + " |";
    rule += "---|";
  }
  out += "\n" + rule + "\n";
  auto row = [&](const std::string& name, const std::function<std::string(const ModelEval&)>& cell) {
    out += "| " + name + " |";
    for (const auto& m : models) out += " " + cell(m) + " |";
    out += "\n";
  };
  auto count = [](int v) { return std::to_string(v); };
  row("execution accuracy", [](const ModelEval& m) { return percent(m.overall); });
  // Families and languages from every model, so a missing one shows as "—".
  std::map<std::string, bool> families, languages;
  for (const auto& m : models) {
    for (const auto& [f, t] : m.per_family) families[f] = true;
    for (const auto& [l, t] : m.per_language) languages[l] = true;
  }
  // Plain loop variables, not bindings: the lambdas capture them (C++17, clang).
  for (const auto& family : families) {
    const std::string& f = family.first;
    row("family " + f, [&](const ModelEval& m) {
      auto it = m.per_family.find(f);
      return it == m.per_family.end() ? std::string("—") : percent(it->second);
    });
  }
  for (const auto& language : languages) {
    const std::string& l = language.first;
    row("language " + l, [&](const ModelEval& m) {
      auto it = m.per_language.find(l);
      return it == m.per_language.end() ? std::string("—") : percent(it->second);
    });
  }
  row("questions retried", [&](const ModelEval& m) { return count(m.questions_retried); });
  row("retries used", [&](const ModelEval& m) { return count(m.retries_used); });
  row("guard refusals", [&](const ModelEval& m) { return count(m.guard_refusals); });
  row("SQL errors", [&](const ModelEval& m) { return count(m.sql_errors); });
  row("stopped at the time limit", [&](const ModelEval& m) { return count(m.stopped); });
  row("replies without SQL", [&](const ModelEval& m) { return count(m.no_sql); });
  row("unanswered", [&](const ModelEval& m) { return count(m.unanswered); });
  row("latency p50 / p90 ms", [](const ModelEval& m) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f / %.0f", m.latency_p50_ms, m.latency_p90_ms);
    return std::string(buf);
  });
  row("tokens prompt / completion", [](const ModelEval& m) {
    return std::to_string(m.prompt_tokens) + " / " + std::to_string(m.completion_tokens);
  });
  return out;
}

}  // namespace lathe::agent
