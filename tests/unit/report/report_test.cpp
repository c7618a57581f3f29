// report/: the page shows the numbers of its input files (each data-key cell against a value
// worked out here from the JSON), the spread over runs by hand (deltas +1 and +3 -> mean +2,
// sd sqrt(2)), escapes every text from a file, survives mistyped fields, and read_run names the
// file that is wrong.
#include "rankemb/report/report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include <fmt/format.h>

#include "common/expect_error.h"
#include "common/temp_dir.h"

namespace rankemb::report::test {
namespace {

using Json = nlohmann::json;
using rankemb::test::expect_error;
using rankemb::test::TempDir;

// The text of the cell with this data-key, or "(none)".
std::string cell(const std::string& page, const std::string& key) {
  const std::string open = fmt::format("data-key=\"{}\">", key);
  const auto at = page.find(open);
  if (at == std::string::npos) return "(none)";
  const auto from = at + open.size();
  return page.substr(from, page.find('<', from) - from);
}

Json sts_results(double base_stsb, double refined_stsb, double base_mean, double refined_mean, int seed) {
  const auto group = [](double stsb, double mean) {
    return Json{{"tasks", {{{"name", "STSBenchmark"}, {"display", "STS-B"}, {"split", "test"}, {"spearman", stsb}},
                           {{"name", "SICKRelatedness"}, {"display", "SICK-R"}, {"split", "test"}, {"spearman", nullptr}}}},
                {"mean_spearman", mean}};
  };
  return Json{{"settings", {{"student", "models/mini"}, {"teacher", "frozen copy of the student"}, {"seed", seed}}},
              {"command", "rankemb demo --chains 8"},
              {"train", {{"steps", 8}, {"best_step", 4}, {"best_dev", 0.8612}, {"first_dev", 0.85}, {"seconds", 12.5}}},
              {"base", {{"model", "models/mini"}, {"sts", group(base_stsb, base_mean)}}},
              {"refined", {{"model", "run/train/best"}, {"sts", group(refined_stsb, refined_mean)}}}};
}

Json chain_stats() {
  return Json{{"chains", 3},
              {"kept", 2},
              {"dropped", 1},
              {"dropped_by_reason", {{"newline", 1}}},
              {"drift", {{"monotonicity", 0.9}, {"by_step", {{{"step", 0}, {"mean", 1.0}, {"p10", 1.0}, {"p90", 1.0}},
                                                             {{"step", 1}, {"mean", 0.4}, {"p10", 0.08}, {"p90", 0.72}}}}}},
              {"examples", {{{"id", 0}, {"kept", true}, {"sentences", {"the cat sat", "<script>alert(1)</script>"}},
                             {"similarity", {1.0, 0.8}}, {"matrix", {{1.0, 0.8}, {0.8, 1.0}}}},
                            {{"id", 3}, {"kept", false}, {"drop_reason", "newline"}, {"sentences", {"hello", "a\nb"}}}}}};
}

TEST(Report, CellsHoldTheNumbersOfTheFiles) {
  report::Run run{.dir = "runs/demo", .results = sts_results(0.8203, 0.8291, 0.7, 0.71, 1), .metrics = {}, .chains = {}};
  for (int s = 1; s <= 8; ++s) run.metrics.push_back({{"type", "step"}, {"step", s}, {"loss", 1.0 / s}});
  run.metrics.push_back({{"type", "eval"}, {"step", 4}, {"score", 0.8612}, {"best", true}});
  run.metrics.push_back({{"type", "eval"}, {"step", 8}, {"score", 0.86}, {"best", false}});
  run.chains.push_back({.label = "g = 1.5", .source = "runs/demo/chains.jsonl", .stats = chain_stats(), .meta = nullptr});
  const std::string page = render_report({.runs = {run}, .chain_sets = {}, .command = "rankemb report runs/demo"});

  EXPECT_EQ(cell(page, "run0.sts.STSBenchmark.base"), "82.03");
  EXPECT_EQ(cell(page, "run0.sts.STSBenchmark.refined"), "82.91");
  EXPECT_EQ(cell(page, "run0.sts.STSBenchmark.delta"), "+0.88");
  EXPECT_EQ(cell(page, "run0.sts.SICKRelatedness.base"), "-");  // null in the file
  EXPECT_EQ(cell(page, "run0.sts.mean.delta"), "+1.00");
  EXPECT_EQ(cell(page, "run0.train.best_step"), "4");
  EXPECT_EQ(cell(page, "run0.train.best_dev"), "86.12");
  EXPECT_EQ(cell(page, "chains0.kept"), "2");
  EXPECT_EQ(cell(page, "chains0.dropped.newline"), "1");
  EXPECT_EQ(cell(page, "chains0.monotonicity"), "0.9000");
  EXPECT_NE(page.find("selected: step 4"), std::string::npos);  // the marker on the dev curve
  EXPECT_NE(page.find("rankemb demo --chains 8"), std::string::npos);  // which command made the run
  EXPECT_NE(page.find("<polygon"), std::string::npos);  // the drift band
  EXPECT_NE(page.find("0 vs 1: 0.800"), std::string::npos);  // the heatmap
  // Text from files is escaped, and the page loads nothing.
  EXPECT_NE(page.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("src="), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
}

TEST(Report, SpreadOverRunsByHand) {
  report::Run a{.dir = "a", .results = sts_results(0.8, 0.81, 0.80, 0.81, 1), .metrics = {}, .chains = {}};
  report::Run b{.dir = "b", .results = sts_results(0.8, 0.83, 0.80, 0.83, 2), .metrics = {}, .chains = {}};
  const std::string page = render_report({.runs = {a, b}, .chain_sets = {}, .command = ""});
  EXPECT_EQ(cell(page, "spread.run0.delta"), "+1.00");
  EXPECT_EQ(cell(page, "spread.run1.delta"), "+3.00");
  EXPECT_EQ(cell(page, "spread.delta_mean"), "+2.00");
  EXPECT_EQ(cell(page, "spread.delta_sd"), "1.41");
  // One run: no spread table.
  EXPECT_EQ(render_report({.runs = {a}, .chain_sets = {}, .command = ""}).find("spread."), std::string::npos);
}

TEST(Report, MistypedFieldsShowAsDashes) {
  report::Run run{.dir = "r", .results = Json::parse(R"({"settings": 3, "train": [1], "base": {"sts": {"tasks": "x"}},
      "refined": {"sts": {"tasks": [{"name": 5, "spearman": "high"}, 7]}, "model": {"a": 1}}})"),
          .metrics = {Json{{"type", 1}, {"step", "x"}}, Json::array()}, .chains = {}};
  run.chains.push_back({.label = "c", .source = "f", .stats = Json::parse(R"({"kept": "many", "drift": {"by_step": [1, {"step": "a"}]},
      "examples": [3, {"kept": "yes", "sentences": [1, null], "matrix": [[1, "x"], 4]}], "dropped_by_reason": [1]})"), .meta = 5});
  std::string page;
  ASSERT_NO_THROW(page = render_report({.runs = {run, run}, .chain_sets = {}, .command = ""}));
  EXPECT_EQ(cell(page, "chains0.kept"), "-");
  EXPECT_EQ(cell(page, "run0.train.steps"), "-");
}

TEST(Report, ReadRunNamesTheBadFile) {
  TempDir dir;
  expect_error([&] { read_run(dir.path()); }, ErrorCode::Input, {dir.path().string(), "not a run directory"});
  std::ofstream(dir / "results.json") << "{\"train\": ";
  expect_error([&] { read_run(dir.path()); }, ErrorCode::Input, "results.json");
  std::ofstream(dir / "results.json") << "{}";
  std::filesystem::create_directories(dir / "train");
  std::ofstream(dir / "train" / "metrics.jsonl") << "{\"type\":\"step\",\"step\":1}\nnot json\n{\"type\":\"step\",\"step\":2}\n";
  expect_error([&] { read_run(dir.path()); }, ErrorCode::Input, "metrics.jsonl:2");
  // An unfinished last line (a kill mid-write) is left out.
  std::ofstream(dir / "train" / "metrics.jsonl") << "{\"type\":\"step\",\"step\":1}\n{\"type\":\"st";
  EXPECT_EQ(read_run(dir.path()).metrics.size(), 1u);
}

TEST(Report, ChainSetLabelComesFromTheMeta) {
  TempDir dir;
  std::ofstream(dir / "c.jsonl.meta.json") << R"({"guidance": 1.5, "model": "lexical"})";
  const ChainSet c = chain_set(dir / "c.jsonl", Json::object());
  EXPECT_EQ(c.label, "g = 1.5");
  EXPECT_EQ(c.meta.at("model"), "lexical");
  EXPECT_EQ(chain_set(dir / "other.jsonl", Json::object()).label, "other.jsonl");
}

}  // namespace
}  // namespace rankemb::report::test
