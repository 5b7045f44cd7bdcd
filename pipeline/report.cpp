// The run report: see report.h.
#include "pipeline/report.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "pipeline/json_files.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/svg_chart.h"

namespace lathe::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The (step, key) points of the metrics lines that have `key`.
ChartSeries series(const std::vector<json>& rows, const std::string& key, const std::string& name) {
  ChartSeries s{name, {}};
  for (const auto& r : rows)
    if (r.contains(key) && r[key].is_number() && r.contains("step")) s.points.push_back({r["step"].get<double>(), r[key].get<double>()});
  return s;
}

std::string percent(double v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * v);
  return buf;
}

std::string fixed(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// base, sft, grpo first (the order they were trained in), then any other name.
std::vector<std::string> model_order(const json& models) {
  std::vector<std::string> out;
  for (const char* m : {"base", "sft", "grpo"})
    if (models.contains(m)) out.push_back(m);
  for (const auto& [name, m] : models.items())
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  return out;
}

double number(const json& j, const std::string& key, double fallback = 0) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

// One line of the figures a stage reports.
std::string stage_brief(const std::string& stage, const json& s) {
  if (stage == "data" && s.contains("split"))
    return std::to_string(s["split"].value("train", 0)) + " train / " + std::to_string(s["split"].value("val", 0)) +
           " val / " + std::to_string(s["split"].value("test", 0)) + " test examples";
  if (stage == "data") return "dataset " + s.value("dir", std::string());
  if (stage == "corpus") return std::to_string(s.value("train", 0)) + " train / " + std::to_string(s.value("validation", 0)) + " validation rows";
  if (stage == "tokenizer") return "vocabulary " + std::to_string(s.value("vocab_size", 0)) + " (" + s.value("model_type", std::string()) + ")";
  if (stage == "pretrain" || stage == "sft") {
    std::string out = std::to_string(s.value("steps", 0)) + " steps, loss " + fixed(number(s, "first_loss"), 3) + " → " +
                      fixed(number(s, "last_loss"), 3);
    if (number(s, "eval_loss", -1) >= 0) out += ", eval loss " + fixed(number(s, "eval_loss"), 3);
    return out;
  }
  if (stage == "grpo")
    return std::to_string(s.value("steps", 0)) + " steps, reward " + fixed(number(s, "first_reward"), 3) + " → " +
           fixed(number(s, "last_reward"), 3);
  if (stage == "eval" && s.contains("models")) {
    std::string out;
    for (const auto& m : model_order(s["models"]))
      out += (out.empty() ? "" : ", ") + m + " " + percent(number(s["models"][m]["overall"], "accuracy"));
    return out;
  }
  return "";
}

std::string cell(const json& tally) {
  if (!tally.is_object() || tally.value("examples", 0) == 0) return "<td class=\"na\">–</td>";
  return "<td>" + percent(tally["accuracy"].get<double>()) + " <span class=\"n\">(" +
         std::to_string(tally["correct"].get<int64_t>()) + "/" + std::to_string(tally["examples"].get<int64_t>()) +
         ")</span></td>";
}

const char* kStyle = R"(
body { font: 14px/1.45 -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK SC", sans-serif; margin: 24px auto; max-width: 1180px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0; } th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.na { color: #999; } span.n { color: #777; font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg.chart { border: 1px solid #e4e4e4; background: #fff; font-size: 11px; }
svg.chart .title { font-size: 13px; font-weight: 600; } svg.chart .grid { stroke: #eee; } svg.chart .frame { fill: none; stroke: #bbb; }
svg.chart .empty { fill: #999; font-size: 14px; }
pre { background: #f7f7f7; padding: 8px; overflow-x: auto; white-space: pre-wrap; font-size: 12px; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #c62828; font-weight: 600; }
details { margin: 6px 0; } summary { cursor: pointer; }
)";

class Html {
 public:
  void raw(const std::string& s) { out_ += s; }
  void text(const std::string& s) { out_ += html_escape(s); }
  void heading(const std::string& level, const std::string& s) { out_ += "<" + level + ">" + html_escape(s) + "</" + level + ">\n"; }
  void para(const std::string& s) { out_ += "<p>" + html_escape(s) + "</p>\n"; }
  void pre(const std::string& s) { out_ += "<pre>" + html_escape(s) + "</pre>\n"; }
  std::string str() const { return out_; }

 private:
  std::string out_;
};

void stage_table(Html& h, const std::string& run_dir) {
  h.heading("h2", "Stages");
  h.raw("<table><tr><th>stage</th><th>status</th><th>time</th><th>key</th><th>summary</th></tr>\n");
  for (const auto& stage : stage_names()) {
    if (stage == "report") continue;
    const auto record = read_json_file(run_dir + "/" + stage + "/stage.json");
    h.raw("<tr><td>" + stage + "</td>");
    if (!record) {
      const bool started = fs::exists(run_dir + "/" + stage + "/stage.started.json");
      h.raw(std::string("<td class=\"na\">") + (started ? "started, not finished" : "not run") + "</td><td></td><td></td><td></td></tr>\n");
      continue;
    }
    const json summary = record->value("summary", json::object());
    h.raw("<td class=\"ok\">done</td><td>" + fixed(number(*record, "seconds"), 1) + " s</td><td><code>" +
          html_escape(record->value("key", "")) + "</code></td><td><details><summary>" +
          html_escape(stage_brief(stage, summary)) + "</summary><pre>" + html_escape(summary.dump(2)) +
          "</pre></details></td></tr>\n");
  }
  h.raw("</table>\n");
}

void accuracy_tables(Html& h, const json& results) {
  h.heading("h2", "Execution accuracy on the held-out split");
  const json& models = results["models"];
  h.para("Split " + results.value("split", std::string("?")) + ", " + std::to_string(results.value("questions", 0)) +
         " questions; a question counts when its SQL returns the gold result set (data/sql_exec.h rules). "
         "Unseen families were held out of training entirely.");
  std::set<std::string> languages, families;
  for (const auto& [name, m] : models.items()) {
    for (const auto& [lang, t] : m["per_language"].items()) languages.insert(lang);
    for (const auto& [family, t] : m["per_family"].items()) families.insert(family);
  }
  h.raw("<table class=\"accuracy\"><tr><th>model</th><th>overall</th>");
  for (const auto& l : languages) h.raw("<th>" + html_escape(l) + "</th>");
  h.raw("<th>seen families</th><th>unseen families</th><th>no answer</th><th>SQL errors</th></tr>\n");
  for (const auto& name : model_order(models)) {
    const json& m = models[name];
    h.raw("<tr><th>" + html_escape(name) + "</th>" + cell(m["overall"]));
    for (const auto& l : languages) h.raw(cell(m["per_language"].value(l, json())));
    h.raw(cell(m["seen_families"]) + cell(m["unseen_families"]) + "<td>" + std::to_string(m.value("no_answer", 0)) +
          "</td><td>" + std::to_string(m.value("sql_errors", 0)) + "</td></tr>\n");
  }
  h.raw("</table>\n<details><summary>Per family</summary><table><tr><th>family</th>");
  for (const auto& name : model_order(models)) h.raw("<th>" + html_escape(name) + "</th>");
  h.raw("</tr>\n");
  for (const auto& f : families) {
    h.raw("<tr><td>" + html_escape(f) + "</td>");
    for (const auto& name : model_order(models)) h.raw(cell(models[name]["per_family"].value(f, json())));
    h.raw("</tr>\n");
  }
  h.raw("</table></details>\n");
}

void training_charts(Html& h, const std::string& run_dir) {
  h.heading("h2", "Training curves");
  h.raw("<div class=\"charts\">\n");
  for (const auto& [stage, title] : std::vector<std::pair<std::string, std::string>>{
           {"pretrain", "Pretraining loss (corpus)"}, {"sft", "SFT loss (inventory)"}}) {
    if (!fs::exists(run_dir + "/" + stage + "/metrics.jsonl")) continue;
    const auto rows = read_jsonl_file(run_dir + "/" + stage + "/metrics.jsonl");
    h.raw(svg_line_chart({title, "step", "loss", {series(rows, "loss", "train loss"), series(rows, "eval_loss", "eval loss")}}));
  }
  const std::string grpo = run_dir + "/grpo/metrics.jsonl";
  if (fs::exists(grpo)) {
    const auto rows = read_jsonl_file(grpo);
    Chart rewards{"GRPO reward (total and per reward, mean per step)", "step", "reward", {series(rows, "reward", "total")}};
    std::set<std::string> names;
    for (const auto& r : rows)
      for (const auto& [key, v] : r.items())
        if (key.rfind("rewards/", 0) == 0 && key.size() > 13 && key.compare(key.size() - 5, 5, "/mean") == 0) names.insert(key);
    for (const auto& key : names) rewards.series.push_back(series(rows, key, key.substr(8, key.size() - 13)));
    h.raw(svg_line_chart(rewards));
    h.raw(svg_line_chart({"GRPO KL to the base (k3)", "step", "kl", {series(rows, "kl", "kl")}}));
    h.raw(svg_line_chart({"GRPO completion length", "step", "tokens",
                          {series(rows, "completions/mean_length", "mean"), series(rows, "completions/min_length", "min"),
                           series(rows, "completions/max_length", "max")}}));
  }
  h.raw("</div>\n");
}

void rollouts(Html& h, const std::string& run_dir, int count) {
  const auto rows = read_jsonl_file(run_dir + "/grpo/rollouts.jsonl");
  if (rows.empty() || count <= 0) return;
  const int64_t last = rows.back().value("step", 0);
  h.heading("h2", "GRPO rollouts (step " + std::to_string(last) + ")");
  h.raw("<table><tr><th>question</th><th>completion</th><th>rewards</th><th>advantage</th></tr>\n");
  int shown = 0;
  for (const auto& r : rows) {
    if (r.value("step", 0) != last || shown++ >= count) continue;
    std::string rewards;
    const json per_reward = r.value("rewards", json::object());
    for (const auto& [name, v] : per_reward.items())
      rewards += name + " " + (v.is_number() ? fixed(v.get<double>(), 3) : std::string("?")) + "\n";
    rewards += "total " + fixed(r.value("reward", 0.0), 3);
    h.raw("<tr><td>");
    h.text(r.value("prompt", ""));
    h.raw("</td><td><pre>");
    h.text(r.value("completion", ""));
    h.raw("</pre></td><td><pre>");
    h.text(rewards);
    h.raw("</pre></td><td>" + fixed(r.value("advantage", 0.0), 3) + "</td></tr>\n");
  }
  h.raw("</table>\n");
}

void predictions(Html& h, const std::string& run_dir, const json& results, int count) {
  if (count <= 0) return;
  h.heading("h2", "Eval answers");
  for (const auto& name : model_order(results["models"])) {
    const auto rows = read_jsonl_file(run_dir + "/eval/predictions-" + name + ".jsonl");
    h.raw("<details" + std::string(name == "grpo" || name == "sft" ? " open" : "") + "><summary>" + html_escape(name) +
          "</summary><table><tr><th>question</th><th>model SQL</th><th>gold SQL</th><th>result</th></tr>\n");
    // Wrong answers are as instructive as right ones: show both, alternating.
    std::vector<const json*> right, wrong;
    for (const auto& r : rows) (r.value("correct", false) ? right : wrong).push_back(&r);
    std::vector<const json*> shown;
    for (size_t i = 0; static_cast<int>(shown.size()) < count && (i < right.size() || i < wrong.size()); ++i) {
      if (i < right.size()) shown.push_back(right[i]);
      if (i < wrong.size() && static_cast<int>(shown.size()) < count) shown.push_back(wrong[i]);
    }
    for (const json* r : shown) {
      const bool ok = r->value("correct", false);
      h.raw("<tr><td>");
      h.text(r->value("question", ""));
      h.raw("</td><td><pre>");
      h.text((*r)["sql"].is_string() ? (*r)["sql"].get<std::string>() : "(no answer)");
      h.raw("</pre></td><td><pre>");
      h.text(r->value("gold_sql", ""));
      h.raw(std::string("</pre></td><td class=\"") + (ok ? "ok\">correct" : "bad\">") + (ok ? "" : html_escape(r->value("error", ""))) +
            "</td></tr>\n");
    }
    h.raw("</table></details>\n");
  }
}

void agent_answers(Html& h, const std::string& run_dir) {
  const auto rows = read_jsonl_file(run_dir + "/serve/answers.jsonl");
  if (rows.empty()) return;
  h.heading("h2", "Agent answers through lathe serve");
  h.raw("<table><tr><th>question</th><th>model</th><th>SQL</th><th>answer</th></tr>\n");
  for (const auto& r : rows) {
    h.raw("<tr><td>");
    h.text(r.value("question", ""));
    h.raw("</td><td>");
    h.text(r.value("model", ""));
    h.raw("</td><td><pre>");
    h.text(r.value("sql", ""));
    h.raw("</pre></td><td>");
    h.text(r.value("answer", ""));
    h.raw("</td></tr>\n");
  }
  h.raw("</table>\n");
  if (fs::exists(run_dir + "/serve/traces.jsonl")) {
    std::string traces = read_file(run_dir + "/serve/traces.jsonl");
    if (traces.size() > 20000) traces = traces.substr(0, 20000) + "\n…";
    h.raw("<details><summary>Agent traces (traces.jsonl)</summary>");
    h.pre(traces);
    h.raw("</details>\n");
  }
}

void configs(Html& h, const std::string& run_dir) {
  h.heading("h2", "Resolved configs");
  h.raw("<details><summary>pipeline.yaml</summary>");
  h.pre(read_file(run_dir + "/pipeline.yaml"));
  h.raw("</details>\n");
  for (const auto& stage : stage_names()) {
    const std::string path = run_dir + "/" + stage + "/config.yaml";
    if (!fs::exists(path)) continue;
    h.raw("<details><summary>" + stage + "/config.yaml</summary>");
    h.pre(read_file(path));
    h.raw("</details>\n");
  }
}

}  // namespace

std::string render_report(const std::string& run_dir, const ReportOptions& options) {
  if (!fs::exists(run_dir + "/pipeline.yaml"))
    fail(run_dir + " is not a pipeline run folder (no pipeline.yaml; run `lathe pipeline` first)");
  Html h;
  h.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lathe run report</title><style>");
  h.raw(kStyle);
  h.raw("</style></head><body>\n");
  h.heading("h1", "lathe run report: " + fs::path(run_dir).filename().string());
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  h.para("Run folder " + fs::absolute(run_dir).string() + ", report written " + when + ".");
  stage_table(h, run_dir);
  const auto results = read_json_file(run_dir + "/eval/results.json");
  if (results && results->contains("models")) accuracy_tables(h, *results);
  training_charts(h, run_dir);
  rollouts(h, run_dir, options.rollouts);
  if (results && results->contains("models")) predictions(h, run_dir, *results, options.predictions);
  agent_answers(h, run_dir);
  configs(h, run_dir);
  h.raw("</body></html>\n");
  return h.str();
}

std::string write_report(const std::string& run_dir, const ReportOptions& options) {
  const std::string path = run_dir + "/report.html";
  write_file_atomic(path, render_report(run_dir, options));
  return path;
}

}  // namespace lathe::pipeline
