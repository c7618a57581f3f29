#include "rankemb/report/report.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "rankemb/chains/settings.h"
#include "rankemb/io/file.h"
#include "rankemb/plot/svg.h"
#include "rankemb/util/error.h"
#include "rankemb/util/version.h"

namespace rankemb::report {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using plot::escape_xml;

// ---- reading ------------------------------------------------------------------------------

namespace {

// metrics.jsonl: one record per line; an unfinished last line (a kill mid-write) is left out.
std::vector<Json> read_metrics(const fs::path& path) {
  std::vector<Json> records;
  std::istringstream in(io::read_file(path));
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() && in.peek() == std::char_traits<char>::eof()) break;
    RANKEMB_CHECK(!j.is_discarded() && j.is_object(), ErrorCode::Input, "{}:{}: not a JSON object", path.string(),
                  number);
    records.push_back(std::move(j));
  }
  return records;
}

}  // namespace

ChainSet chain_set(const fs::path& chain_file, Json stats, const std::string& fallback) {
  ChainSet c{.label = fallback, .source = chain_file.string(), .stats = std::move(stats), .meta = nullptr};
  const fs::path meta = chains::meta_path(chain_file);
  if (fs::exists(meta)) c.meta = io::read_json(meta, ErrorCode::Input);
  if (c.meta.is_object() && c.meta.contains("guidance") && c.meta.at("guidance").is_number())
    c.label = fmt::format("g = {}", c.meta.at("guidance").get<double>());
  if (c.label.empty()) c.label = chain_file.filename().string();
  return c;
}

Run read_run(const fs::path& dir) {
  Run run{.dir = dir, .results = nullptr, .metrics = {}, .chains = {}};
  const fs::path results = dir / "results.json", stats = dir / "chain_stats.json", metrics = dir / "train" / "metrics.jsonl";
  RANKEMB_CHECK(fs::exists(results) || fs::exists(stats) || fs::exists(metrics), ErrorCode::Input,
                "{}: not a run directory (no results.json, chain_stats.json or train/metrics.jsonl)", dir.string());
  if (fs::exists(results)) run.results = io::read_json(results, ErrorCode::Input);
  if (fs::exists(metrics)) run.metrics = read_metrics(metrics);
  if (fs::exists(stats)) {
    run.chains.push_back(chain_set(dir / "chains.jsonl", io::read_json(stats, ErrorCode::Input)));
    // Runs side by side differ in their directory more often than in their guidance.
    const fs::path name = dir.filename().empty() ? dir.parent_path().filename() : dir.filename();  // "runs/demo/"
    run.chains.back().label = fmt::format("{}: {}", name.string(), run.chains.back().label);
  }
  return run;
}

// ---- rendering ----------------------------------------------------------------------------

namespace {

using Path = std::vector<std::string>;

// The field at `path` under `j`, or nullptr when any step is missing or not an object.
const Json* find(const Json& j, const Path& path) {
  const Json* at = &j;
  for (const std::string& key : path) {
    if (!at->is_object()) return nullptr;
    const auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}
std::optional<double> number(const Json& j, const Path& path) {
  const Json* v = find(j, path);
  if (!v || !v->is_number()) return std::nullopt;
  const double x = v->get<double>();
  return std::isfinite(x) ? std::optional<double>(x) : std::nullopt;
}
std::string text(const Json& j, const Path& path) {
  const Json* v = find(j, path);
  if (!v || v->is_null()) return "";
  return v->is_string() ? v->get<std::string>() : v->dump();
}
bool flag(const Json& j, const Path& path, bool otherwise) {
  const Json* v = find(j, path);
  return v && v->is_boolean() ? v->get<bool>() : otherwise;
}
const Json& array(const Json& j, const Path& path) {
  static const Json empty = Json::array();
  const Json* v = find(j, path);
  return v && v->is_array() ? *v : empty;
}

// Bounds on what one page draws from a file, whatever the file holds: the statistics CLI writes
// stay far below them, a hand-made file cannot make the page (or its renderer) explode.
constexpr std::size_t kMaxExamples = 24;     // example chains per chain set
constexpr std::size_t kMaxSentences = 256;   // sentences shown per example
constexpr std::size_t kMaxMatrix = 96;       // rows and columns of a heatmap
constexpr std::size_t kMaxHeatmaps = 6;      // heatmaps per chain set

const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"};
const char* color(std::size_t i) { return kColors[i % std::size(kColors)]; }

// A number cell with its data-key: x * scale with `decimals` decimals ("+" sign when `sign`).
std::string cell(const std::string& key, std::optional<double> x, double scale = 1, int decimals = 2, bool sign = false) {
  if (!x) return fmt::format("<td data-key=\"{}\">-</td>", escape_xml(key));
  return fmt::format("<td data-key=\"{}\">{}</td>", escape_xml(key),
                     sign ? fmt::format("{:+.{}f}", *x * scale, decimals) : fmt::format("{:.{}f}", *x * scale, decimals));
}
std::string count_cell(const std::string& key, std::optional<double> x) { return cell(key, x, 1, 0); }
std::optional<double> difference(std::optional<double> a, std::optional<double> b) {
  if (!a || !b) return std::nullopt;
  return *b - *a;
}

std::string figure(const std::string& svg, const std::string& caption) {
  return fmt::format("<figure>{}<figcaption>{}</figcaption></figure>\n", svg, caption);
}

// ---- chains ----

std::string chain_summary_table(const std::vector<const ChainSet*>& sets) {
  std::vector<std::string> reasons;
  for (const ChainSet* c : sets)
    if (const Json* by = find(c->stats, {"dropped_by_reason"}); by && by->is_object())
      for (const auto& [reason, n] : by->items())
        if (std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) reasons.push_back(reason);
  std::string h = "<table class=\"numbers\"><tr><th></th>";
  for (const ChainSet* c : sets) h += fmt::format("<th>{}</th>", escape_xml(c->label));
  h += "</tr>\n";
  const auto row = [&](const std::string& title, const std::string& key, const Path& path, int decimals) {
    h += fmt::format("<tr><th>{}</th>", escape_xml(title));
    for (std::size_t i = 0; i < sets.size(); ++i)
      h += cell(fmt::format("chains{}.{}", i, key), number(sets[i]->stats, path), 1, decimals);
    h += "</tr>\n";
  };
  row("chains", "chains", {"chains"}, 0);
  row("kept", "kept", {"kept"}, 0);
  row("dropped", "dropped", {"dropped"}, 0);
  for (const auto& reason : reasons) row("dropped: " + reason, "dropped." + reason, {"dropped_by_reason", reason}, 0);
  row("sentences per kept chain (mean)", "kept_length", {"kept_length", "mean"}, 2);
  row("words per sentence (mean)", "words_per_sentence", {"words_per_sentence", "mean"}, 2);
  row("monotonicity (-Spearman, 1 = monotone)", "monotonicity", {"drift", "monotonicity"}, 4);
  row("share of steps down", "share_steps_down", {"drift", "share_steps_down"}, 4);
  h += "</table>\n";
  // The source of each column.
  h += "<ul class=\"sources\">";
  for (const ChainSet* c : sets) {
    const std::string model = text(c->meta, {"model"});
    h += fmt::format("<li><strong>{}</strong>: <code>{}</code>{}</li>", escape_xml(c->label), escape_xml(c->source),
                     model.empty() ? "" : fmt::format(", generator <code>{}</code>", escape_xml(model)));
  }
  return h + "</ul>\n";
}

std::string drift_figure(const std::vector<const ChainSet*>& sets) {
  plot::Panel panel{"mean cosine to the seed by step (band: 10th-90th percentile over chains)", {}};
  for (std::size_t i = 0; i < sets.size(); ++i) {
    plot::Series s{sets[i]->label, {}, color(i)};
    for (const Json& b : array(sets[i]->stats, {"drift", "by_step"})) {
      const auto step = number(b, {"step"}), mean = number(b, {"mean"}), lo = number(b, {"p10"}), hi = number(b, {"p90"});
      if (!step) continue;
      if (mean) s.points.emplace_back(*step, *mean);
      if (lo && hi) s.band.push_back({*step, {*lo, *hi}});
    }
    if (!s.points.empty()) panel.series.push_back(std::move(s));
  }
  if (panel.series.empty()) return "<p class=\"none\">No drift measured (the statistics were made without a judge).</p>\n";
  return figure(plot::line_panels_svg({panel}, "drift from the seed"),
                "Each chain x0..xn is embedded by the judge; s_k = cos(x_k, x0). A good chain falls steadily.");
}

std::vector<std::vector<double>> read_matrix(const Json& m) {
  std::vector<std::vector<double>> matrix;
  for (std::size_t i = 0; i < m.size() && i < kMaxMatrix; ++i) {
    matrix.emplace_back();
    const Json& row = m[i];
    for (std::size_t j = 0; row.is_array() && j < row.size() && j < kMaxMatrix; ++j)
      matrix.back().push_back(row[j].is_number() ? row[j].get<double>() : std::nan(""));
  }
  return matrix;
}

std::string heatmaps(const std::vector<const ChainSet*>& sets) {
  std::string h;
  for (const ChainSet* c : sets) {
    std::size_t drawn = 0;
    for (const Json& e : array(c->stats, {"examples"})) {
      const Json& m = array(e, {"matrix"});
      if (m.empty() || drawn == kMaxHeatmaps) continue;
      ++drawn;
      const auto matrix = read_matrix(m);
      double lo = 1;
      for (const auto& row : matrix)
        for (const double v : row)
          if (std::isfinite(v)) lo = std::min(lo, v);
      const std::string title = fmt::format("{}, chain {}", c->label, text(e, {"id"}));
      h += figure(plot::heatmap_svg(matrix, title, lo, 1), fmt::format("cos(x_i, x_j): white = {:.2f}, dark blue = 1", lo));
    }
  }
  if (h.empty()) return "";
  return "<h3>Step-by-step similarity</h3>\n<div class=\"row\">" + h + "</div>\n";
}

std::string example_chains(const std::vector<const ChainSet*>& sets) {
  std::string h;
  for (std::size_t i = 0; i < sets.size(); ++i) {
    const Json& examples = array(sets[i]->stats, {"examples"});
    for (std::size_t x = 0; x < examples.size() && x < kMaxExamples; ++x) {
      const Json& e = examples[x];
      const bool kept = flag(e, {"kept"}, true);
      const std::string status = kept ? "kept" : "dropped: " + text(e, {"drop_reason"});
      // The first example of each chain file starts open; the rest are a click away.
      h += fmt::format("<details{}><summary>{}, chain {} <span class=\"{}\">{}</span></summary>\n<ol start=\"0\">",
                       x == 0 ? " open" : "", escape_xml(sets[i]->label), escape_xml(text(e, {"id"})),
                       kept ? "kept" : "dropped", escape_xml(status));
      const Json& sentences = array(e, {"sentences"});
      const Json& sim = array(e, {"similarity"});
      for (std::size_t k = 0; k < sentences.size() && k < kMaxSentences; ++k) {
        const std::string s = sentences[k].is_string() ? sentences[k].get<std::string>() : sentences[k].dump();
        const std::string v = k < sim.size() && sim[k].is_number() ? fmt::format("{:.3f}", sim[k].get<double>()) : "-";
        h += fmt::format("<li><span class=\"sim\">{}</span> {}</li>", v, escape_xml(s));
      }
      h += "</ol></details>\n";
    }
  }
  if (h.empty()) return "";
  return "<h3>Example chains</h3>\n<p>Each sentence with its cosine to the seed (step 0) under the judge.</p>\n" + h;
}

std::string chains_section(const ReportInputs& in) {
  std::vector<const ChainSet*> sets;
  for (const Run& r : in.runs)
    for (const ChainSet& c : r.chains) sets.push_back(&c);
  for (const ChainSet& c : in.chain_sets) sets.push_back(&c);
  std::string h = "<section id=\"chains\"><h2>Chains</h2>\n";
  if (sets.empty()) return h + "<p class=\"none\">No chain statistics in these inputs.</p></section>\n";
  h += chain_summary_table(sets) + drift_figure(sets) + heatmaps(sets) + example_chains(sets);
  return h + "</section>\n";
}

// ---- training ----

std::optional<double> best_step(const Run& r) {
  if (const auto s = number(r.results, {"train", "best_step"})) return s;
  std::optional<double> best;
  for (const Json& m : r.metrics)
    if (text(m, {"type"}) == "eval" && flag(m, {"best"}, false)) best = number(m, {"step"});
  return best;
}

std::string training_figure(const Run& r) {
  plot::Series loss{"", {}, "#1f77b4"}, dev{"", {}, "#d62728", true};
  for (const Json& m : r.metrics) {
    const auto step = number(m, {"step"});
    if (!step) continue;
    const std::string type = text(m, {"type"});
    if (type == "step")
      if (const auto v = number(m, {"loss"})) loss.points.emplace_back(*step, *v);
    if (type == "eval")
      if (const auto v = number(m, {"score"})) dev.points.emplace_back(*step, *v);
  }
  if (loss.points.empty() && dev.points.empty()) return "<p class=\"none\">No training log.</p>\n";
  std::vector<plot::Panel> panels{{"training loss", {loss}}};
  if (!dev.points.empty()) {
    panels.push_back({"dev mean Spearman (STS-B dev, SICK-R dev)", {dev}});
    if (const auto best = best_step(r)) {
      panels.back().marker_x = *best;
      panels.back().marker_label = fmt::format("selected: step {}", *best);
    }
  }
  return figure(plot::line_panels_svg(panels, "training"), "From train/metrics.jsonl; the dashed line is the model kept (train/best).");
}

std::string training_section(const ReportInputs& in) {
  std::string h = "<section id=\"training\"><h2>Training</h2>\n";
  for (std::size_t i = 0; i < in.runs.size(); ++i) {
    const Run& r = in.runs[i];
    const std::string k = fmt::format("run{}.train.", i);
    h += fmt::format("<h3>Run <code>{}</code></h3>\n<table class=\"numbers\">", escape_xml(r.dir.string()));
    h += "<tr><th>steps</th>" + count_cell(k + "steps", number(r.results, {"train", "steps"})) + "</tr>";
    h += "<tr><th>selected step</th>" + count_cell(k + "best_step", best_step(r)) + "</tr>";
    h += "<tr><th>dev score at the first evaluation (x100)</th>" + cell(k + "first_dev", number(r.results, {"train", "first_dev"}), 100) + "</tr>";
    h += "<tr><th>dev score of the selected step (x100)</th>" + cell(k + "best_dev", number(r.results, {"train", "best_dev"}), 100) + "</tr>";
    h += "<tr><th>training time (s)</th>" + cell(k + "seconds", number(r.results, {"train", "seconds"}), 1, 1) + "</tr></table>\n";
    h += training_figure(r);
    if (const Json* s = find(r.results, {"settings"}); s && s->is_object()) {
      h += "<details><summary>run settings (results.json)</summary><table class=\"settings\">";
      for (const auto& [key, value] : s->items())
        h += fmt::format("<tr><th>{}</th><td>{}</td></tr>", escape_xml(key),
                         escape_xml(value.is_string() ? value.get<std::string>() : value.dump()));
      h += "</table></details>\n";
    }
  }
  if (in.runs.empty()) h += "<p class=\"none\">No run directory given.</p>\n";
  return h + "</section>\n";
}

// ---- evaluation ----

// The task of `tasks` whose "name" and "split" equal those of `like`.
const Json* same_task(const Json& tasks, const Json& like) {
  if (!tasks.is_array()) return nullptr;
  for (const Json& t : tasks)
    if (text(t, {"name"}) == text(like, {"name"}) && text(t, {"split"}) == text(like, {"split"})) return &t;
  return nullptr;
}

struct Metric {
  std::string field, title;
};

// Base vs refined for one result group ("sts", "dev", "rerank", "transfer"): a row per task
// (x100, and the delta), a mean row, and the deltas of the first metric as bars.
std::string group_table(const Json& results, std::size_t run, const std::string& group, const std::vector<Metric>& metrics,
                        const std::string& mean_field, const std::string& title) {
  const Json& base_tasks = array(results, {"base", group, "tasks"});
  const Json& tasks = array(results, {"refined", group, "tasks"});
  if (tasks.empty()) return "";
  std::string h = fmt::format("<h3>{}</h3>\n<table class=\"numbers\"><tr><th>task</th>", escape_xml(title));
  for (const auto& m : metrics) h += fmt::format("<th>base {0}</th><th>refined {0}</th><th>&Delta;</th>", escape_xml(m.title));
  h += "</tr>\n";
  std::vector<plot::Bar> bars;
  const auto key = [&](const std::string& task, const std::string& field, const char* which) {
    return fmt::format("run{}.{}.{}.{}{}", run, group, task, field == metrics.front().field ? "" : field + ".", which);
  };
  for (const Json& t : tasks) {
    const Json* b = same_task(base_tasks, t);
    const std::string name = text(t, {"name"}) + (text(t, {"split"}) == "test" || text(t, {"split"}).empty() ? "" : "_" + text(t, {"split"}));
    const std::string display = text(t, {"display"}).empty() ? name : text(t, {"display"});
    h += fmt::format("<tr><th>{}</th>", escape_xml(display));
    for (const auto& m : metrics) {
      const auto before = b ? number(*b, {m.field}) : std::nullopt, after = number(t, {m.field});
      h += cell(key(name, m.field, "base"), before, 100) + cell(key(name, m.field, "refined"), after, 100) +
           cell(key(name, m.field, "delta"), difference(before, after), 100, 2, true);
      if (&m == &metrics.front()) bars.push_back({display, difference(before, after).value_or(std::nan("")) * 100});
    }
    h += "</tr>\n";
  }
  if (!mean_field.empty()) {
    const auto before = number(results, {"base", group, mean_field}), after = number(results, {"refined", group, mean_field});
    h += "<tr class=\"mean\"><th>mean</th>" + cell(key("mean", metrics.front().field, "base"), before, 100) +
         cell(key("mean", metrics.front().field, "refined"), after, 100) +
         cell(key("mean", metrics.front().field, "delta"), difference(before, after), 100, 2, true);
    for (std::size_t i = 1; i < metrics.size(); ++i) h += "<td></td><td></td><td></td>";
    h += "</tr>\n";
    bars.push_back({"mean", difference(before, after).value_or(std::nan("")) * 100});
  }
  h += "</table>\n";
  return h + figure(plot::bar_chart_svg(bars, fmt::format("refined - base, {} x100", metrics.front().title)), "");
}

// Mean STS delta per run, and its mean and sample standard deviation over runs.
std::string spread_table(const ReportInputs& in) {
  std::string h = "<h3>Spread over runs</h3>\n<table class=\"numbers\"><tr><th>run</th><th>seed</th><th>base mean</th>"
                  "<th>refined mean</th><th>&Delta;</th></tr>\n";
  std::vector<double> deltas;
  for (std::size_t i = 0; i < in.runs.size(); ++i) {
    const Json& r = in.runs[i].results;
    const auto before = number(r, {"base", "sts", "mean_spearman"}), after = number(r, {"refined", "sts", "mean_spearman"});
    if (const auto d = difference(before, after)) deltas.push_back(*d * 100);
    h += fmt::format("<tr><th><code>{}</code></th><td>{}</td>", escape_xml(in.runs[i].dir.string()),
                     escape_xml(text(r, {"settings", "seed"})));
    h += cell(fmt::format("spread.run{}.base", i), before, 100) + cell(fmt::format("spread.run{}.refined", i), after, 100) +
         cell(fmt::format("spread.run{}.delta", i), difference(before, after), 100, 2, true) + "</tr>\n";
  }
  std::optional<double> mean, sd;
  if (!deltas.empty()) {
    double sum = 0;
    for (const double d : deltas) sum += d;
    mean = sum / static_cast<double>(deltas.size());
    if (deltas.size() > 1) {
      double ss = 0;
      for (const double d : deltas) ss += (d - *mean) * (d - *mean);
      sd = std::sqrt(ss / static_cast<double>(deltas.size() - 1));
    }
  }
  h += "<tr class=\"mean\"><th>mean &Delta; over runs</th><td></td><td></td><td></td>" + cell("spread.delta_mean", mean, 1, 2, true) +
       "</tr>\n<tr><th>standard deviation of &Delta; (n - 1)</th><td></td><td></td><td></td>" + cell("spread.delta_sd", sd) +
       "</tr></table>\n";
  return h + "<p>A difference smaller than about two standard deviations of &Delta; is not yet a real one.</p>\n";
}

std::string evaluation_section(const ReportInputs& in) {
  std::string h = "<section id=\"evaluation\"><h2>Evaluation</h2>\n";
  bool any = false;
  for (std::size_t i = 0; i < in.runs.size(); ++i) {
    const Json& r = in.runs[i].results;
    if (!find(r, {"refined"})) continue;
    any = true;
    h += fmt::format("<h3>Run <code>{}</code>: <code>{}</code> (base) vs <code>{}</code> (refined)</h3>\n",
                     escape_xml(in.runs[i].dir.string()), escape_xml(text(r, {"base", "model"})),
                     escape_xml(text(r, {"refined", "model"})));
    h += fmt::format("<p>Data: <code>{}</code>, text variant {}.</p>\n", escape_xml(text(r, {"base", "data_dir"})),
                     escape_xml(text(r, {"base", "text"})));
    h += group_table(r, i, "sts", {{"spearman", "Spearman"}}, "mean_spearman", "STS (test sets)");
    h += group_table(r, i, "dev", {{"spearman", "Spearman"}}, "mean_spearman", "STS dev");
    h += group_table(r, i, "rerank", {{"map", "MAP"}, {"mrr_at_10", "MRR@10"}}, "mean_map", "Reranking");
    h += group_table(r, i, "transfer", {{"accuracy", "accuracy"}}, "mean_accuracy", "Transfer");
  }
  if (!any) return h + "<p class=\"none\">No evaluation results (results.json) in these inputs.</p></section>\n";
  if (in.runs.size() > 1) h += spread_table(in);
  return h + "</section>\n";
}

constexpr const char* kStyle = R"(
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
code { font-family: ui-monospace, monospace; font-size: 0.92em; background: #f4f4f4; padding: 0 0.2em; }
table { border-collapse: collapse; margin: 0.8em 0; } th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e4e4e4; }
table.numbers td { text-align: right; font-variant-numeric: tabular-nums; } th { text-align: left; font-weight: 600; }
tr.mean th, tr.mean td { border-top: 2px solid #999; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
div.row { display: flex; flex-wrap: wrap; gap: 1em; }
details { margin: 0.4em 0; } summary { cursor: pointer; }
ol { margin: 0.3em 0; } .sim { display: inline-block; width: 3.5em; color: #555; font-variant-numeric: tabular-nums; }
.kept { color: #2ca02c; } .dropped { color: #d62728; } .none { color: #777; font-style: italic; }
nav a { margin-right: 1em; } ul.sources { color: #555; font-size: 0.9em; }
)";

}  // namespace

std::string render_report(const ReportInputs& in) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>rankemb report</title>\n";
  h += fmt::format("<style>{}</style></head>\n<body>\n<h1>rankemb report</h1>\n", kStyle);
  h += fmt::format("<p class=\"made\">Made by <code>{}</code> with rankemb {}.</p>\n",
                   escape_xml(in.command.empty() ? "rankemb report" : in.command), escape_xml(version()));
  for (const Run& r : in.runs) {
    const Json& s = r.results;
    if (!find(s, {"settings"})) continue;
    h += fmt::format("<p>Run <code>{}</code>: {} refines <code>{}</code> against teacher <code>{}</code> on chains from "
                     "<code>{}</code>.</p>\n",
                     escape_xml(r.dir.string()),
                     text(s, {"command"}).empty() ? "" : fmt::format("<code>{}</code>", escape_xml(text(s, {"command"}))),
                     escape_xml(text(s, {"settings", "student"})), escape_xml(text(s, {"settings", "teacher"})),
                     escape_xml(text(s, {"settings", "seeds"})));
  }
  h += "<nav><a href=\"#chains\">Chains</a><a href=\"#training\">Training</a><a href=\"#evaluation\">Evaluation</a></nav>\n";
  h += chains_section(in) + training_section(in) + evaluation_section(in);
  return h + "</body></html>\n";
}

}  // namespace rankemb::report
