// Line charts as inline SVG text, for the self-contained run report (no JavaScript, no
// network): axes with rounded ticks, one <path class="series"> per series ("M x,y L x,y ..."),
// and a legend. A chart with no points says so in its body.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace lathe::pipeline {

struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
};

std::string svg_line_chart(const Chart& chart, int width = 560, int height = 280);

// Text safe inside HTML elements and attribute values.
std::string html_escape(const std::string& text);

// Up to `max_ticks` + 1 round tick values covering [lo, hi] (1, 2, 5 × 10^k steps).
std::vector<double> nice_ticks(double lo, double hi, int max_ticks = 5);

}  // namespace lathe::pipeline
