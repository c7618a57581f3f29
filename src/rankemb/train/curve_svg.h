// A training-curve picture without a plotting library: one SVG with a panel per series (training
// loss, dev score) sharing the step axis. Hand-written so the toolkit needs no graphics
// dependency; the output is plain SVG 1.1 that browsers and image viewers render.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace rankemb::train {

struct CurveSeries {
  std::string title;                              // panel title, e.g. "training loss"
  std::vector<std::pair<double, double>> points;  // (step, value), drawn in order; non-finite values are skipped
  std::string color = "#1f77b4";
  bool markers = false;                           // a dot per point (sparse series such as evaluations)
};

// The SVG text: the panels stacked vertically, each with its own y range, ticks and labels.
std::string render_curve_svg(const std::vector<CurveSeries>& panels, const std::string& title);
// Writes render_curve_svg(...) atomically to `path`.
void write_curve_svg(const std::filesystem::path& path, const std::vector<CurveSeries>& panels, const std::string& title);

}  // namespace rankemb::train
