// rankemb report: the HTML report of one or more run directories and/or chain files
// (report/report.h draws it; quality/ measures a chain file given with --chains). This file reads
// the inputs, refuses an output that would overwrite one of them, and writes the page.
#include <iostream>

#include <fmt/format.h>

#include "cli.h"
#include "rankemb/io/file.h"
#include "rankemb/quality/chain_stats.h"
#include "rankemb/report/report.h"
#include "rankemb/util/error.h"

namespace rankemb::cli {

namespace fs = std::filesystem;

namespace {
struct ReportArgs {
  std::vector<std::string> runs, chains;
  std::string output, judge;
  Dtype dtype = Dtype::Float32;
  int batch = 64;
  std::size_t examples = 6, matrices = 3;
};

fs::path output_path(const ReportArgs& a) {
  if (!a.output.empty()) return a.output;
  RANKEMB_CHECK(a.runs.size() == 1, ErrorCode::Usage,
                "report: give -o/--output (the default, RUN_DIR/report.html, needs exactly one run directory)");
  return fs::path(a.runs.front()) / "report.html";
}

int run_report(const ReportArgs& a) {
  RANKEMB_CHECK(!a.runs.empty() || !a.chains.empty(), ErrorCode::Usage, "report: give a run directory or --chains FILE");
  const fs::path out = output_path(a);
  std::vector<fs::path> inputs;
  for (const auto& r : a.runs)
    for (const char* f : {"results.json", "chain_stats.json", "chains.jsonl", "train/metrics.jsonl", "pipeline.json"})
      inputs.push_back(fs::path(r) / f);
  for (const auto& c : a.chains) inputs.push_back(c);
  io::check_not_an_input(out, inputs);

  report::ReportInputs in{.runs = {}, .chain_sets = {}, .command = command_line()};
  for (const auto& r : a.runs) in.runs.push_back(report::read_run(r));
  for (const auto& c : a.chains) {
    const auto progress = make_progress();
    const quality::ChainStats stats = quality::chain_file_stats(
        c, {.model = a.judge, .dtype = a.dtype, .batch = a.batch}, {.examples = a.examples, .matrices = a.matrices},
        *progress);
    in.chain_sets.push_back(report::chain_set(c, quality::chain_stats_json(stats)));
  }
  io::write_atomic(out, report::render_report(in));
  std::cout << out.string() << '\n';
  std::cout.flush();
  return 0;
}
}  // namespace

void register_report(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<ReportArgs>();
  auto* cmd = root.add_subcommand(
      "report",
      "One self-contained HTML page (no network needed) of runs and chain files: chains kept/dropped and their drift, "
      "the training curve with the selected step, base vs refined per task, the spread over several runs.\n"
      "Examples:\n"
      "  rankemb report runs/demo                      (writes runs/demo/report.html)\n"
      "  rankemb report runs/seed1 runs/seed2 -o seeds.html\n"
      "  rankemb report --chains g1.5.jsonl --chains g1.jsonl --judge MODEL -o chains.html");
  cmd->add_option("runs", a->runs, "Run directories of 'rankemb demo' (results.json, chain_stats.json, train/)");
  cmd->add_option("-o,--output", a->output, "The HTML file (default: RUN_DIR/report.html for one run directory)");
  cmd->add_option("--chains", a->chains, "Chain files to show (repeat for several, e.g. g = 1.5 next to g = 1)");
  cmd->add_option("--judge", a->judge, "Encoder that measures the drift of --chains (without it: counts and text only)");
  cmd->add_option("--examples", a->examples, "Kept and dropped example chains shown per --chains file")
      ->check(in_range(0, 100));
  cmd->add_option("--matrices", a->matrices, "Similarity heatmaps per --chains file (of the kept examples)")
      ->check(in_range(0, 20));
  cmd->add_option("--batch", a->batch, "Sentences per judge batch")->check(in_range(1, 4096));
  add_dtype_option(cmd, a->dtype, "float32 or bfloat16 (the judge)");
  cmd->callback([a, &rc] { rc = run_report(*a); });
}

}  // namespace rankemb::cli
