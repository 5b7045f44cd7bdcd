// The run report: from a run folder's metrics it draws one chart per curve with a non-empty
// path, the accuracy table per model, family and language, escapes every text it shows, and
// refuses a folder that is not a pipeline run. Also the chart helpers on their own.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "pipeline/report.h"
#include "pipeline/svg_chart.h"
#include "tests/support/test_support.h"

namespace lathe::pipeline {
namespace {

namespace fs = std::filesystem;
using ::lathe::testing::TempDir;
using nlohmann::json;

void write_lines(const std::string& path, const std::vector<json>& rows) {
  fs::create_directories(fs::path(path).parent_path());
  std::string text;
  for (const auto& r : rows) text += r.dump() + "\n";
  write_file_atomic(path, text);
}

json tally(int correct, int examples) {
  return {{"correct", correct}, {"examples", examples}, {"accuracy", examples ? double(correct) / examples : 0.0}};
}

// A run folder as the stages leave it, with made-up figures.
void make_run(const TempDir& dir) {
  write_file_atomic(dir.file("pipeline.yaml"), "run:\n  seed: 42\n");
  std::vector<json> sft;
  for (int s = 1; s <= 10; ++s) sft.push_back({{"step", s}, {"loss", 3.0 / s}});
  sft.push_back({{"step", 10}, {"eval_loss", 0.5}, {"eval_token_accuracy", 0.8}});
  write_lines(dir.file("sft/metrics.jsonl"), sft);
  write_lines(dir.file("pretrain/metrics.jsonl"), sft);
  std::vector<json> grpo;
  for (int s = 1; s <= 5; ++s)
    grpo.push_back({{"step", s}, {"reward", 0.5 + 0.1 * s}, {"rewards/sql_execution/mean", 0.2 * s},
                    {"rewards/xml_strict/mean", 0.5}, {"kl", 0.01 * s}, {"completions/mean_length", 40 + s},
                    {"completions/min_length", 30}, {"completions/max_length", 60}});
  write_lines(dir.file("grpo/metrics.jsonl"), grpo);
  write_lines(dir.file("grpo/rollouts.jsonl"),
              {{{"step", 5}, {"prompt", "宝马有几辆 <script>?"}, {"completion", "<answer>\nSELECT 1\n</answer>\n"},
                {"reward", 2.5}, {"advantage", 0.7}, {"rewards", {{"sql_execution", 2.0}}}}});
  fs::create_directories(dir.file("eval"));
  json model = {{"overall", tally(3, 4)}, {"seen_families", tally(3, 3)}, {"unseen_families", tally(0, 1)},
                {"per_language", {{"zh", tally(2, 2)}, {"en", tally(1, 2)}}},
                {"per_family", {{"count_brand", tally(3, 3)}, {"topn_oldest_in_stock_city", tally(0, 1)}}},
                {"no_answer", 0}, {"sql_errors", 1}};
  write_file_atomic(dir.file("eval/results.json"),
                    json{{"split", "test"}, {"questions", 4}, {"models", {{"base", model}, {"sft", model}}}}.dump());
  write_lines(dir.file("eval/predictions-sft.jsonl"),
              {{{"question", "Q & A"}, {"sql", "SELECT 1"}, {"gold_sql", "SELECT 1"}, {"correct", true}, {"error", ""}}});
  write_file_atomic(dir.file("sft/stage.json"), json{{"stage", "sft"}, {"key", "abc"}, {"seconds", 12.5}}.dump());
  write_file_atomic(dir.file("sft/config.yaml"), "training:\n  lr: 0.002\n");
}

TEST(Report, EveryChartHasANonEmptyPath) {
  TempDir dir;
  make_run(dir);
  const std::string html = render_report(dir.path());
  const std::regex svg("<svg class=\"chart\"[\\s\\S]*?</svg>");
  int charts = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), svg); it != std::sregex_iterator(); ++it) {
    ++charts;
    const std::string s = it->str();
    EXPECT_TRUE(std::regex_search(s, std::regex("<path class=\"series\"[^>]* d=\"M[0-9.]+,[0-9.]+ L"))) << s;
    EXPECT_EQ(s.find("no data"), std::string::npos) << s;
  }
  EXPECT_EQ(charts, 5) << "pretrain loss, SFT loss, GRPO reward, KL, completion length";
  EXPECT_NE(html.find("data-series=\"sql_execution\""), std::string::npos) << "one series per reward";
  EXPECT_NE(html.find("data-series=\"eval loss\""), std::string::npos);
}

TEST(Report, AccuracyTableAndEscapedText) {
  TempDir dir;
  make_run(dir);
  const std::string html = render_report(dir.path());
  EXPECT_NE(html.find("75.0% <span class=\"n\">(3/4)</span>"), std::string::npos);
  EXPECT_NE(html.find("topn_oldest_in_stock_city"), std::string::npos);
  EXPECT_NE(html.find("<th>zh</th>"), std::string::npos);
  EXPECT_NE(html.find("宝马有几辆 &lt;script&gt;?"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos) << "no scripts at all";
  EXPECT_NE(html.find("Q &amp; A"), std::string::npos);
  EXPECT_NE(html.find("12.5 s"), std::string::npos) << "time per stage";
  EXPECT_NE(html.find("sft/config.yaml"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg")) << "no external resources";
}

TEST(Report, WritesReportHtmlAndRefusesOtherFolders) {
  TempDir dir;
  EXPECT_THROW(write_report(dir.path()), Error);
  make_run(dir);
  EXPECT_EQ(write_report(dir.path()), dir.file("report.html"));
  EXPECT_TRUE(fs::exists(dir.file("report.html")));
}

TEST(SvgChart, EmptyChartSaysSo) {
  const std::string svg = svg_line_chart({"t", "x", "y", {{"a", {}}}});
  EXPECT_NE(svg.find("no data"), std::string::npos);
  EXPECT_EQ(svg.find("<path"), std::string::npos);
}

TEST(SvgChart, PointsMapIntoThePlotArea) {
  const std::string svg = svg_line_chart({"t", "x", "y", {{"a", {{0, 0}, {10, 1}}}}}, 560, 280);
  // Left margin 60, right 16, top 30, bottom 44: (0,0) bottom-left, (10,1) top-right.
  EXPECT_NE(svg.find("d=\"M60.0,236.0 L544.0,30.0\""), std::string::npos) << svg;
}

TEST(SvgChart, NiceTicks) {
  EXPECT_EQ(nice_ticks(0, 10), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  const std::vector<double> fine = nice_ticks(0.13, 0.61), expected = {0.2, 0.3, 0.4, 0.5, 0.6};
  ASSERT_EQ(fine.size(), expected.size());
  for (size_t i = 0; i < fine.size(); ++i) EXPECT_NEAR(fine[i], expected[i], 1e-12);
  EXPECT_EQ(nice_ticks(3, 3), std::vector<double>{3});
  EXPECT_EQ(html_escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
}

}  // namespace
}  // namespace lathe::pipeline
