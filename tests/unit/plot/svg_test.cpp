// plot/svg: the three pictures hold what they are given (one polyline per series, a band per
// band, bars on the right side of zero, one cell per matrix entry), skip non-finite values, and
// escape every text.
#include "rankemb/plot/svg.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace rp = rankemb::plot;

namespace {
std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}
}  // namespace

TEST(PlotSvg, EscapesMarkup) {
  EXPECT_EQ(rp::escape_xml("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
}

TEST(PlotSvg, NiceTicksCoverTheRangeInRoundSteps) {
  const auto unit = rp::nice_ticks(0, 1);
  ASSERT_EQ(unit.size(), 6u);
  for (std::size_t i = 0; i < unit.size(); ++i) EXPECT_NEAR(unit[i], 0.2 * static_cast<double>(i), 1e-12);
  const auto t = rp::nice_ticks(3, 47);
  ASSERT_EQ(t.size(), 4u);  // span 44: steps 1, 2, 5 give over 6 ticks, 10 gives 10 20 30 40
  EXPECT_DOUBLE_EQ(t.front(), 10);
  EXPECT_DOUBLE_EQ(t.back(), 40);
  EXPECT_EQ(rp::nice_ticks(2, 2).size(), 1u);  // a flat range does not loop
}

TEST(PlotSvg, LinePanelsDrawEverySeriesBandAndMarker) {
  rp::Series loss{"", {{1, 3.0}, {2, 2.5}, {3, NAN}, {4, 2.0}}};
  rp::Series dev{"dev <score>", {{2, 0.8}, {4, 0.81}}, "#d62728", true, {{2, {0.7, 0.9}}, {4, {0.75, 0.85}}}};
  rp::Panel second{"dev", {dev, rp::Series{"g = 1", {{2, 0.5}}}}};
  second.marker_x = 4;
  second.marker_label = "best & kept";
  const std::string svg = rp::line_panels_svg({{"loss", {loss}}, second}, "run & test");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(count(svg, "<polyline"), 3u);
  EXPECT_EQ(count(svg, "<polygon"), 1u);  // one band
  EXPECT_EQ(count(svg, "<circle"), 2u);   // markers only for the sparse series
  EXPECT_EQ(count(svg, "stroke-dasharray"), 1u);
  EXPECT_NE(svg.find("dev &lt;score&gt;"), std::string::npos);  // legend
  EXPECT_NE(svg.find("run &amp; test"), std::string::npos);
  EXPECT_NE(svg.find("best &amp; kept"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(PlotSvg, BarsSitOnTheirSideOfZero) {
  const std::string svg = rp::bar_chart_svg({{"up", 1.5}, {"down", -0.25}, {"none", NAN}}, "deltas");
  EXPECT_EQ(count(svg, "<rect x="), 2u);  // the background rect has no x
  EXPECT_NE(svg.find("+1.50"), std::string::npos);
  EXPECT_NE(svg.find("-0.25"), std::string::npos);
  EXPECT_EQ(count(svg, "#2ca02c"), 1u);
  EXPECT_EQ(count(svg, "#d62728"), 1u);
}

TEST(PlotSvg, HeatmapHasOneCellPerEntryWithItsValue) {
  const std::string svg = rp::heatmap_svg({{1.0, 0.5, 0.25}, {0.5, 1.0, 0.5}, {0.25, 0.5, 1.0}}, "chain 0", 0.25, 1);
  EXPECT_EQ(count(svg, "<rect x="), 9u);
  EXPECT_NE(svg.find("0 vs 2: 0.250"), std::string::npos);
  EXPECT_NE(svg.find("rgb(255,255,255)"), std::string::npos) << "the lowest value is white";
  EXPECT_NE(svg.find("rgb(8,48,107)"), std::string::npos) << "the highest is dark blue";
}
