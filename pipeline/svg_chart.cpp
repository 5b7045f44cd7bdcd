// Inline SVG line charts: see svg_chart.h.
#include "pipeline/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace lathe::pipeline {

namespace {

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string tick_label(double v, double step) {
  char buf[32];
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step)));
  if (std::fabs(v) >= 1e5 || (v != 0 && std::fabs(v) < 1e-3)) std::snprintf(buf, sizeof buf, "%.2g", v);
  else std::snprintf(buf, sizeof buf, "%.*f", std::min(decimals, 4), v);
  return buf;
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, max_ticks);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  std::vector<double> ticks;
  // Multiples of the step, not a running sum, so the error does not grow along the axis.
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) ticks.push_back(k == 0 ? 0.0 : k * step);
  return ticks;
}

std::string svg_line_chart(const Chart& chart, int width, int height) {
  const double left = 60, right = 16, top = 30, bottom = 44;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  size_t points = 0;
  for (const auto& s : chart.series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x), y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
      ++points;
    }
  std::string svg = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
                    "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " +
                    std::to_string(height) + "\" role=\"img\" aria-label=\"" + html_escape(chart.title) + "\">\n";
  svg += "<text x=\"" + num(width / 2.0) + "\" y=\"18\" text-anchor=\"middle\" class=\"title\">" + html_escape(chart.title) +
         "</text>\n";
  if (points == 0) {
    svg += "<text x=\"" + num(width / 2.0) + "\" y=\"" + num(height / 2.0) +
           "\" text-anchor=\"middle\" class=\"empty\">no data</text>\n</svg>\n";
    return svg;
  }
  if (x_hi == x_lo) x_lo -= 0.5, x_hi += 0.5;
  if (y_hi == y_lo) {
    const double pad = std::max(std::fabs(y_lo) * 0.1, 0.5);
    y_lo -= pad, y_hi += pad;
  }
  const std::vector<double> xt = nice_ticks(x_lo, x_hi), yt = nice_ticks(y_lo, y_hi);
  const auto px = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * plot_w; };
  const auto py = [&](double y) { return top + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h; };
  const double x_step = xt.size() > 1 ? xt[1] - xt[0] : 1, y_step = yt.size() > 1 ? yt[1] - yt[0] : 1;

  svg += "<g class=\"axes\">\n";
  for (double t : yt) {
    svg += "<line class=\"grid\" x1=\"" + num(left) + "\" x2=\"" + num(left + plot_w) + "\" y1=\"" + num(py(t)) +
           "\" y2=\"" + num(py(t)) + "\"/>";
    svg += "<text x=\"" + num(left - 6) + "\" y=\"" + num(py(t) + 4) + "\" text-anchor=\"end\">" + tick_label(t, y_step) +
           "</text>\n";
  }
  for (double t : xt)
    svg += "<text x=\"" + num(px(t)) + "\" y=\"" + num(top + plot_h + 16) + "\" text-anchor=\"middle\">" +
           tick_label(t, x_step) + "</text>\n";
  svg += "<rect class=\"frame\" x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(plot_w) + "\" height=\"" +
         num(plot_h) + "\"/>\n";
  svg += "<text x=\"" + num(left + plot_w / 2) + "\" y=\"" + num(height - 8.0) + "\" text-anchor=\"middle\">" +
         html_escape(chart.x_label) + "</text>\n";
  svg += "<text transform=\"rotate(-90)\" x=\"" + num(-(top + plot_h / 2)) + "\" y=\"14\" text-anchor=\"middle\">" +
         html_escape(chart.y_label) + "</text>\n</g>\n";

  double legend_x = left + 8;
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const auto& s = chart.series[i];
    const std::string color = kPalette[i % (sizeof kPalette / sizeof kPalette[0])];
    std::string d;
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      d += (d.empty() ? "M" : " L") + num(px(x)) + "," + num(py(y));
    }
    if (d.empty()) continue;
    svg += "<path class=\"series\" data-series=\"" + html_escape(s.name) + "\" d=\"" + d + "\" stroke=\"" + color +
           "\" fill=\"none\" stroke-width=\"1.8\"/>\n";
    if (s.points.size() == 1)
      svg += "<circle cx=\"" + num(px(s.points[0].first)) + "\" cy=\"" + num(py(s.points[0].second)) + "\" r=\"3\" fill=\"" +
             color + "\"/>\n";
    svg += "<rect x=\"" + num(legend_x) + "\" y=\"" + num(top + 6) + "\" width=\"10\" height=\"10\" fill=\"" + color + "\"/>";
    svg += "<text x=\"" + num(legend_x + 14) + "\" y=\"" + num(top + 15) + "\" class=\"legend\">" + html_escape(s.name) +
           "</text>\n";
    legend_x += 24 + 7.0 * static_cast<double>(s.name.size());
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace lathe::pipeline
