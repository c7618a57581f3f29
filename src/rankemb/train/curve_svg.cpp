#include "rankemb/train/curve_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "rankemb/io/file.h"

namespace rankemb::train {

namespace {

constexpr double kWidth = 720, kPanelHeight = 240, kLeft = 70, kRight = 20, kTop = 36, kBottom = 34;

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// About five "nice" tick values (1, 2, 5 x 10^k steps) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi) {
  double span = hi - lo;
  double raw = span / 5;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (span / step <= 6) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

}  // namespace

std::string render_curve_svg(const std::vector<CurveSeries>& panels, const std::string& title) {
  double height = kTop + static_cast<double>(panels.size()) * kPanelHeight + 10;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"20\" font-size=\"14\" text-anchor=\"middle\">{3}</text>\n",
      kWidth, height, kWidth / 2, escape(title));

  // Shared step axis over every finite point of every panel.
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  for (const auto& p : panels)
    for (auto [x, y] : p.points)
      if (std::isfinite(x) && std::isfinite(y)) x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
  if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1;
  if (x_hi <= x_lo) x_hi = x_lo + 1;

  for (std::size_t k = 0; k < panels.size(); ++k) {
    const auto& p = panels[k];
    double top = kTop + static_cast<double>(k) * kPanelHeight;
    double plot_h = kPanelHeight - kBottom - 14, plot_w = kWidth - kLeft - kRight;
    double y0 = top + 14;
    double y_lo = std::numeric_limits<double>::infinity(), y_hi = -y_lo;
    for (auto [x, y] : p.points)
      if (std::isfinite(x) && std::isfinite(y)) y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    if (!std::isfinite(y_lo)) y_lo = 0, y_hi = 1;
    if (y_hi - y_lo < 1e-12) y_lo -= 0.5, y_hi += 0.5;
    double pad = (y_hi - y_lo) * 0.05;
    y_lo -= pad, y_hi += pad;
    auto sx = [&](double x) { return kLeft + (x - x_lo) / (x_hi - x_lo) * plot_w; };
    auto sy = [&](double y) { return y0 + (y_hi - y) / (y_hi - y_lo) * plot_h; };

    svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>\n", kLeft, top + 8, escape(p.title));
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", kLeft, y0,
                       plot_w, plot_h);
    for (double t : nice_ticks(y_lo, y_hi)) {
      svg += fmt::format(
          "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.2f}\" y2=\"{2:.2f}\" stroke=\"#ddd\"/>"
          "<text x=\"{3}\" y=\"{4:.2f}\" text-anchor=\"end\">{5:g}</text>\n",
          kLeft, kLeft + plot_w, sy(t), kLeft - 4, sy(t) + 4, t);
    }
    for (double t : nice_ticks(x_lo, x_hi)) {
      svg += fmt::format(
          "<line x1=\"{0:.2f}\" x2=\"{0:.2f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#444\"/>"
          "<text x=\"{0:.2f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
          sx(t), y0 + plot_h, y0 + plot_h + 4, y0 + plot_h + 16, t);
    }
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text>\n", kLeft + plot_w / 2,
                       y0 + plot_h + 30);
    std::string pts;
    for (auto [x, y] : p.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      pts += fmt::format("{:.2f},{:.2f} ", sx(x), sy(y));
      if (p.markers) svg += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"3\" fill=\"{}\"/>\n", sx(x), sy(y), p.color);
    }
    if (!pts.empty()) {
      pts.pop_back();
      svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n", p.color, pts);
    }
  }
  svg += "</svg>\n";
  return svg;
}

void write_curve_svg(const std::filesystem::path& path, const std::vector<CurveSeries>& panels, const std::string& title) {
  io::write_atomic(path, render_curve_svg(panels, title));
}

}  // namespace rankemb::train
