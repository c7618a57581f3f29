#include "rankemb/plot/svg.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace rankemb::plot {

std::string escape_xml(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
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

std::vector<double> nice_ticks(double lo, double hi) {
  const double span = hi - lo;
  if (!(span > 0) || !std::isfinite(span)) return {lo};
  const double mag = std::pow(10.0, std::floor(std::log10(span / 5)));
  double step = mag;
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (span / step <= 6) break;
  }
  std::vector<double> ticks;
  const double first = std::ceil(lo / step - 1e-9);
  for (int i = 0; i < 12; ++i) {  // multiples of step, not a running sum: no drift in the labels
    const double t = (first + i) * step;
    if (t > hi + step * 1e-9) break;
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

namespace {

constexpr double kWidth = 720, kPanelHeight = 240, kLeft = 70, kRight = 20, kTop = 36, kBottom = 34;

std::string svg_open(double width, double height, const std::string& title) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"20\" font-size=\"14\" text-anchor=\"middle\">{3}</text>\n",
      width, height, width / 2, escape_xml(title));
}

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  // A usable range: [0, 1] when empty, widened when flat.
  Range settled(double pad_share) const {
    Range r = *this;
    if (!std::isfinite(r.lo) || !std::isfinite(r.hi - r.lo)) r.lo = 0, r.hi = 1;  // empty, or a span that overflows
    if (r.hi - r.lo < 1e-12) {  // flat: widen relative to the value, so 1e20 gets a range too
      const double w = std::max(0.5, std::abs(r.lo) * 1e-6);
      r.lo -= w, r.hi += w;
    }
    const double pad = (r.hi - r.lo) * pad_share;
    r.lo -= pad, r.hi += pad;
    return r;
  }
};

Range x_range(const std::vector<Panel>& panels) {
  Range r;
  for (const auto& p : panels) {
    for (const auto& s : p.series)
      for (const auto& [x, y] : s.points)
        if (std::isfinite(y)) r.add(x);
    if (p.marker_x) r.add(*p.marker_x);
  }
  return r.settled(0);
}

Range y_range(const Panel& p) {
  Range r;
  for (const auto& s : p.series) {
    for (const auto& [x, y] : s.points) r.add(y);
    for (const auto& [x, band] : s.band) r.add(band.first), r.add(band.second);
  }
  return r.settled(0.05);
}

std::string polyline(const std::string& points, const std::string& color) {
  return fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n", color, points);
}

template <typename SX, typename SY>
std::string draw_series(const Series& s, const SX& sx, const SY& sy) {
  std::string svg, outline;
  std::vector<std::string> lower;  // the band's lower edge, drawn back from the right
  for (const auto& [x, band] : s.band)
    if (std::isfinite(x) && std::isfinite(band.first) && std::isfinite(band.second)) {
      outline += fmt::format("{:.2f},{:.2f} ", sx(x), sy(band.second));
      lower.push_back(fmt::format("{:.2f},{:.2f} ", sx(x), sy(band.first)));
    }
  for (auto it = lower.rbegin(); it != lower.rend(); ++it) outline += *it;
  if (!outline.empty())
    svg += fmt::format("<polygon fill=\"{}\" fill-opacity=\"0.18\" stroke=\"none\" points=\"{}\"/>\n", s.color,
                       outline);
  std::string pts;
  for (const auto& [x, y] : s.points) {
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    pts += fmt::format("{:.2f},{:.2f} ", sx(x), sy(y));
    if (s.markers) svg += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"3\" fill=\"{}\"/>\n", sx(x), sy(y), s.color);
  }
  if (!pts.empty()) {
    pts.pop_back();
    svg += polyline(pts, s.color);
  }
  return svg;
}

std::string draw_panel(const Panel& p, double top, const Range& xr) {
  const double plot_h = kPanelHeight - kBottom - 14, plot_w = kWidth - kLeft - kRight, y0 = top + 14;
  const Range yr = y_range(p);
  const auto sx = [&](double x) { return kLeft + (x - xr.lo) / (xr.hi - xr.lo) * plot_w; };
  const auto sy = [&](double y) { return y0 + (yr.hi - y) / (yr.hi - yr.lo) * plot_h; };
  std::string svg = fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>\n", kLeft, top + 8, escape_xml(p.title));
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", kLeft, y0,
                     plot_w, plot_h);
  for (const double t : nice_ticks(yr.lo, yr.hi))
    svg += fmt::format(
        "<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.2f}\" y2=\"{2:.2f}\" stroke=\"#ddd\"/>"
        "<text x=\"{3}\" y=\"{4:.2f}\" text-anchor=\"end\">{5:g}</text>\n",
        kLeft, kLeft + plot_w, sy(t), kLeft - 4, sy(t) + 4, t);
  for (const double t : nice_ticks(xr.lo, xr.hi))
    svg += fmt::format(
        "<line x1=\"{0:.2f}\" x2=\"{0:.2f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#444\"/>"
        "<text x=\"{0:.2f}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
        sx(t), y0 + plot_h, y0 + plot_h + 4, y0 + plot_h + 16, t);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", kLeft + plot_w / 2, y0 + plot_h + 30,
                     escape_xml(p.x_label));
  for (const auto& s : p.series) svg += draw_series(s, sx, sy);
  if (p.marker_x && std::isfinite(*p.marker_x)) {
    const double x = sx(*p.marker_x);
    const bool left = x > kLeft + plot_w * 0.7;  // near the right edge the label goes on the line's left
    svg += fmt::format(
        "<line x1=\"{0:.2f}\" x2=\"{0:.2f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>"
        "<text x=\"{3:.2f}\" y=\"{4}\" fill=\"#555\" text-anchor=\"{5}\">{6}</text>\n",
        x, y0, y0 + plot_h, left ? x - 4 : x + 4, y0 + plot_h - 6, left ? "end" : "start", escape_xml(p.marker_label));
  }
  double legend_y = top + 8;
  for (auto it = p.series.rbegin(); it != p.series.rend(); ++it) {  // right-aligned, last series rightmost
    if (it->label.empty()) continue;
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{}\">{}</text>\n", kLeft + plot_w, legend_y,
                       it->color, escape_xml(it->label));
    legend_y += 13;
  }
  return svg;
}

}  // namespace

std::string line_panels_svg(const std::vector<Panel>& panels, const std::string& title) {
  const double height = kTop + static_cast<double>(panels.size()) * kPanelHeight + 10;
  std::string svg = svg_open(kWidth, height, title);
  const Range xr = x_range(panels);
  for (std::size_t k = 0; k < panels.size(); ++k)
    svg += draw_panel(panels[k], kTop + static_cast<double>(k) * kPanelHeight, xr);
  return svg + "</svg>\n";
}

std::string bar_chart_svg(const std::vector<Bar>& bars, const std::string& title, int decimals) {
  constexpr double kRow = 22, kLabel = 130, kPad = 60;
  const double height = kTop + static_cast<double>(bars.size()) * kRow + 12;
  std::string svg = svg_open(kWidth, height, title);
  Range r;
  r.add(0);
  for (const auto& b : bars) r.add(b.value);
  if (r.hi - r.lo < 1e-12) r.hi = r.lo + 1;
  const double plot_w = kWidth - kLabel - 2 * kPad;
  const auto sx = [&](double v) { return kLabel + kPad + (v - r.lo) / (r.hi - r.lo) * plot_w; };
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const double y = kTop + static_cast<double>(i) * kRow, v = bars[i].value;
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", kLabel, y + 15, escape_xml(bars[i].label));
    if (!std::isfinite(v)) {
      svg += fmt::format("<text x=\"{:.2f}\" y=\"{}\">-</text>\n", sx(0) + 4, y + 15);
      continue;
    }
    const double x0 = std::min(sx(0), sx(v)), w = std::abs(sx(v) - sx(0));
    svg += fmt::format("<rect x=\"{:.2f}\" y=\"{}\" width=\"{:.2f}\" height=\"{}\" fill=\"{}\"/>\n", x0, y + 4, w, kRow - 8,
                       v >= 0 ? "#2ca02c" : "#d62728");
    svg += fmt::format("<text x=\"{:.2f}\" y=\"{}\" text-anchor=\"{}\">{:+.{}f}</text>\n", v >= 0 ? sx(v) + 4 : sx(v) - 4,
                       y + 15, v >= 0 ? "start" : "end", v, decimals);
  }
  svg += fmt::format("<line x1=\"{0:.2f}\" x2=\"{0:.2f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#444\"/>\n", sx(0), kTop,
                     height - 10);
  return svg + "</svg>\n";
}

std::string heatmap_svg(const std::vector<std::vector<double>>& m, const std::string& title, double lo, double hi,
                        int label_every) {
  const std::size_t n = m.size();
  const double cell = n == 0 ? 10 : std::clamp(300.0 / static_cast<double>(n), 4.0, 24.0);
  const double left = 34, top = kTop + 6, side = cell * static_cast<double>(n);
  const double width = std::max(left + side + 20, 240.0), height = top + side + 24;
  std::string svg = svg_open(width, height, title);
  const double span = hi > lo ? hi - lo : 1;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < m[i].size() && j < n; ++j) {
      const double v = m[i][j];
      const double t = std::isfinite(v) ? std::clamp((v - lo) / span, 0.0, 1.0) : 0;
      // White (t = 0) to dark blue (t = 1).
      const int red = static_cast<int>(255 - t * (255 - 8)), green = static_cast<int>(255 - t * (255 - 48)),
                blue = static_cast<int>(255 - t * (255 - 107));
      svg += fmt::format(
          "<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"rgb({},{},{})\"><title>{} vs {}: "
          "{:.3f}</title></rect>\n",
          left + static_cast<double>(j) * cell, top + static_cast<double>(i) * cell, cell, cell, red, green, blue, i, j, v);
    }
  }
  const int every = std::max(1, label_every);
  for (std::size_t i = 0; i < n; i += static_cast<std::size_t>(every)) {
    const double c = (static_cast<double>(i) + 0.5) * cell;
    svg += fmt::format("<text x=\"{}\" y=\"{:.2f}\" text-anchor=\"end\">{}</text>", left - 3, top + c + 4, i);
    svg += fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">{}</text>\n", left + c, top + side + 14, i);
  }
  return svg + "</svg>\n";
}

}  // namespace rankemb::plot
