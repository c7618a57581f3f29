// rankemb::plot owns every picture the toolkit draws: plain SVG 1.1 text, written by hand so the
// toolkit needs no graphics dependency and a page that embeds it needs nothing from the network.
// Three kinds: stacked line panels sharing an x axis (training curves, drift by step with a band),
// horizontal bars around zero (before/after deltas), and a square heatmap (a chain's step-by-step
// similarity matrix). Non-finite values are skipped, every text is XML-escaped.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rankemb::plot {

// Text safe inside XML/HTML elements and double-quoted attributes.
std::string escape_xml(std::string_view text);

// About five "nice" tick values (1, 2, 5 x 10^k steps) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi);

struct Series {
  std::string label;                              // legend entry ("" = none)
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
  std::string color = "#1f77b4";
  bool markers = false;                           // a dot per point (sparse series such as evaluations)
  // A shaded band: (x, lo, hi) per entry, e.g. the 10th..90th percentile at each step.
  std::vector<std::pair<double, std::pair<double, double>>> band;
};

struct Panel {
  std::string title;
  std::vector<Series> series;
  std::string x_label = "step";
  std::optional<double> marker_x;  // a dashed vertical line, e.g. the selected checkpoint
  std::string marker_label;
};

// The panels stacked vertically, each with its own y range, ticks and legend, one shared x range.
std::string line_panels_svg(const std::vector<Panel>& panels, const std::string& title);

struct Bar {
  std::string label;
  double value = 0;
};
// One horizontal bar per entry from a zero line, green above zero and red below, the value
// printed at the bar's end with `decimals` decimals.
std::string bar_chart_svg(const std::vector<Bar>& bars, const std::string& title, int decimals = 2);

// A square matrix as coloured cells (white at `lo`, dark blue at `hi`), rows top to bottom, with
// every `label_every`-th index labelled on both axes; each cell carries its value as a tooltip.
std::string heatmap_svg(const std::vector<std::vector<double>>& matrix, const std::string& title, double lo, double hi,
                        int label_every = 4);

}  // namespace rankemb::plot
