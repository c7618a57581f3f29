#include "rankemb/eval/report.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "rankemb/util/error.h"

namespace rankemb::eval {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kStsNames[] = {"sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr"};
constexpr std::string_view kTransferNames[] = {"mr", "cr", "subj", "mpqa", "sst2", "trec", "mrpc"};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

void add_unique(std::vector<std::string>& v, std::string s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(std::move(s));
}

StsDataset load_sts_task(const fs::path& dir, std::string_view name, TextVariant text) {
  if (name == "stsb") return load_stsb(dir, "test", text);
  if (name == "sickr") return load_sick_r(dir, "test", text);
  return load_sts_year(dir, 2000 + std::stoi(std::string(name.substr(3))), text);
}

// NaN-aware mean of one field over results.
template <class T, class F>
double mean_of(const std::vector<T>& v, F field) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (const auto& x : v) s += field(x);
  return s / static_cast<double>(v.size());
}

json number(double x) { return std::isnan(x) ? json(nullptr) : json(x); }

json corr_json(const Correlation& c) { return {{"spearman", number(c.spearman)}, {"pearson", number(c.pearson)}, {"n", c.n}}; }

// The group's timing; zeros when the group did not run.
GroupTiming group_timing(const EvalReport& r, std::string_view group) {
  for (const auto& t : r.timings)
    if (t.group == group) return t;
  return {};
}

json sts_group_json(const EvalReport& report, const std::vector<StsResult>& results, std::string_view group) {
  json tasks = json::array();
  for (const auto& r : results) {
    json t = {{"name", r.name},
              {"display", display_name(r)},
              {"split", r.split},
              {"spearman", number(r.all.spearman)},
              {"pearson", number(r.all.pearson)},
              {"n", r.all.n},
              {"mean_spearman", number(r.mean_spearman)},
              {"mean_pearson", number(r.mean_pearson)},
              {"wmean_spearman", number(r.wmean_spearman)},
              {"wmean_pearson", number(r.wmean_pearson)},
              {"n_unscored", r.n_unscored}};
    json subsets = json::array();
    for (const auto& [name, c] : r.subsets) {
      json s = corr_json(c);
      s["name"] = name;
      subsets.push_back(std::move(s));
    }
    t["subsets"] = std::move(subsets);
    json skipped = json::array();
    for (const auto& s : r.skipped) skipped.push_back({{"where", s.where}, {"reason", s.reason}});
    t["skipped"] = std::move(skipped);
    tasks.push_back(std::move(t));
  }
  return {{"tasks", std::move(tasks)},
          {"mean_spearman", number(mean_spearman(results))},
          {"mean_pearson", number(mean_of(results, [](const StsResult& r) { return r.all.pearson; }))},
          {"seconds", group_timing(report, group).seconds},
          {"embed_seconds", group_timing(report, group).embed_seconds}};
}

// Plain-text table: first column left-aligned, the others right-aligned, two spaces apart.
class TextTable {
 public:
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string render() const {
    std::vector<std::size_t> width;
    for (const auto& row : rows_)
      for (std::size_t i = 0; i < row.size(); ++i) {
        if (width.size() <= i) width.push_back(0);
        width[i] = std::max(width[i], row[i].size());
      }
    std::string out;
    for (const auto& row : rows_) {
      for (std::size_t i = 0; i < row.size(); ++i) {
        if (i == 0) out += fmt::format("{:<{}}", row[i], width[i]);
        else out += fmt::format("  {:>{}}", row[i], width[i]);
      }
      while (!out.empty() && out.back() == ' ') out.pop_back();  // blank last cells (mean rows)
      out += '\n';
    }
    return out;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string pct(double x) { return std::isnan(x) ? "nan" : fmt::format("{:.2f}", 100.0 * x); }
std::string delta(double a, double b) { return std::isnan(a) || std::isnan(b) ? "-" : fmt::format("{:+.2f}", 100.0 * (b - a)); }

std::string sts_section(std::string_view title, const std::vector<StsResult>& results) {
  std::string out = fmt::format("{} (cosine; Spearman and Pearson x 100)\n", title);
  TextTable t;
  t.add({"task", "spearman", "pearson", "pairs"});
  for (const auto& r : results) t.add({display_name(r), pct(r.all.spearman), pct(r.all.pearson), std::to_string(r.all.n)});
  if (results.size() > 1)
    t.add({fmt::format("mean ({})", results.size()), pct(mean_spearman(results)),
           pct(mean_of(results, [](const StsResult& r) { return r.all.pearson; })), ""});
  out += t.render();
  for (const auto& r : results)
    if (!r.skipped.empty())
      out += fmt::format("note: {}: {} rows with unusable gold scores left out (first: {}: {}; all in the JSON)\n",
                         display_name(r), r.skipped.size(), r.skipped.front().where, r.skipped.front().reason);
  return out;
}

std::string rerank_section(const std::vector<RerankResult>& results) {
  std::string out = "Reranking (cosine; MAP and MRR@10 x 100, over queries with a positive and a negative)\n";
  TextTable t;
  t.add({"task", "MAP", "MRR@10", "queries"});
  for (const auto& r : results)
    t.add({display_name(r), pct(r.map), pct(r.mrr_at_10), fmt::format("{}/{}", r.n_scored, r.n_queries)});
  if (results.size() > 1)
    t.add({fmt::format("mean ({})", results.size()), pct(mean_of(results, [](const RerankResult& r) { return r.map; })),
           pct(mean_of(results, [](const RerankResult& r) { return r.mrr_at_10; })), ""});
  out += t.render();
  return out;
}

std::string transfer_section(const std::vector<TransferResult>& results) {
  std::string out = "Transfer (logistic regression on frozen embeddings; accuracy x 100)\n";
  TextTable t;
  t.add({"task", "accuracy", "F1", "L2", "train", "test"});
  for (const auto& r : results) {
    std::string l2;
    if (r.l2.size() == 1) l2 = fmt::format("{:g}", r.l2.front());
    else if (!r.l2.empty()) l2 = fmt::format("{:g}..{:g}", *std::min_element(r.l2.begin(), r.l2.end()),
                                             *std::max_element(r.l2.begin(), r.l2.end()));
    t.add({display_name(r), pct(r.accuracy), std::isnan(r.f1) ? "" : pct(r.f1), l2, std::to_string(r.n_train),
           r.n_test ? std::to_string(r.n_test) : "10-fold"});
  }
  if (results.size() > 1)
    t.add({fmt::format("mean ({})", results.size()), pct(mean_of(results, [](const TransferResult& r) { return r.accuracy; })), "",
           "", "", ""});
  out += t.render();
  return out;
}

// Looks a task up by display name in another run.
template <class T>
const T* find_by_name(const std::vector<T>& v, const std::string& name) {
  for (const auto& x : v)
    if (display_name(x) == name) return &x;
  return nullptr;
}

// Display names of both runs, `a`'s order first.
template <class T>
std::vector<std::string> union_names(const std::vector<T>& a, const std::vector<T>& b) {
  std::vector<std::string> names;
  for (const auto& x : a) add_unique(names, display_name(x));
  for (const auto& x : b) add_unique(names, display_name(x));
  return names;
}

std::string sts_compare_section(std::string_view title, const std::vector<StsResult>& a, const std::vector<StsResult>& b) {
  std::string out = fmt::format("{} (cosine; Spearman x 100)\n", title);
  TextTable t;
  t.add({"task", "A", "B", "B-A"});
  const auto nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& name : union_names(a, b)) {
    const auto* ra = find_by_name(a, name);
    const auto* rb = find_by_name(b, name);
    const double sa = ra ? ra->all.spearman : nan, sb = rb ? rb->all.spearman : nan;
    t.add({name, ra ? pct(sa) : "-", rb ? pct(sb) : "-", delta(sa, sb)});
  }
  if (a.size() > 1 || b.size() > 1) {
    const double ma = mean_spearman(a), mb = mean_spearman(b);
    t.add({"mean", pct(ma), pct(mb), delta(ma, mb)});
  }
  out += t.render();
  return out;
}

std::string rerank_compare_section(const std::vector<RerankResult>& a, const std::vector<RerankResult>& b) {
  std::string out = "Reranking (cosine; MAP and MRR@10 x 100)\n";
  TextTable t;
  t.add({"task", "MAP A", "MAP B", "B-A", "MRR@10 A", "MRR@10 B", "B-A"});
  const auto nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& name : union_names(a, b)) {
    const auto* ra = find_by_name(a, name);
    const auto* rb = find_by_name(b, name);
    const double ma = ra ? ra->map : nan, mb = rb ? rb->map : nan;
    const double ra10 = ra ? ra->mrr_at_10 : nan, rb10 = rb ? rb->mrr_at_10 : nan;
    t.add({name, ra ? pct(ma) : "-", rb ? pct(mb) : "-", delta(ma, mb), ra ? pct(ra10) : "-", rb ? pct(rb10) : "-",
           delta(ra10, rb10)});
  }
  out += t.render();
  return out;
}

std::string transfer_compare_section(const std::vector<TransferResult>& a, const std::vector<TransferResult>& b) {
  std::string out = "Transfer (accuracy x 100)\n";
  TextTable t;
  t.add({"task", "A", "B", "B-A"});
  const auto nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& name : union_names(a, b)) {
    const auto* ra = find_by_name(a, name);
    const auto* rb = find_by_name(b, name);
    const double xa = ra ? ra->accuracy : nan, xb = rb ? rb->accuracy : nan;
    t.add({name, ra ? pct(xa) : "-", rb ? pct(xb) : "-", delta(xa, xb)});
  }
  if (a.size() > 1 || b.size() > 1) {
    auto acc = [](const TransferResult& r) { return r.accuracy; };
    const double ma = mean_of(a, acc), mb = mean_of(b, acc);
    t.add({"mean", pct(ma), pct(mb), delta(ma, mb)});
  }
  out += t.render();
  return out;
}

}  // namespace

TaskSelection parse_tasks(std::string_view spec) {
  TaskSelection sel;
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    const std::size_t comma = std::min(spec.find(',', pos), spec.size());
    const std::string_view raw = trim(spec.substr(pos, comma - pos));
    pos = comma + 1;
    if (raw.empty()) continue;
    const std::string name = lower(raw);
    if (name == "sts") {
      for (auto n : kStsNames) add_unique(sel.sts, std::string(n));
    } else if (std::find(std::begin(kStsNames), std::end(kStsNames), name) != std::end(kStsNames)) {
      add_unique(sel.sts, name);
    } else if (name == "dev") {
      sel.dev = true;
    } else if (name == "rerank" || name == "trecqa") {
      add_unique(sel.rerank, "trecqa");
    } else if (name.size() > 6 && name.ends_with(".jsonl")) {
      add_unique(sel.rerank, std::string(raw));  // a path: keep its case
    } else if (name == "transfer") {
      for (auto n : kTransferNames) add_unique(sel.transfer, std::string(n));
    } else if (std::find(std::begin(kTransferNames), std::end(kTransferNames), name) != std::end(kTransferNames)) {
      add_unique(sel.transfer, name);
    } else {
      fail(ErrorCode::Usage,
           "unknown task \"{}\"; valid: sts (sts12, sts13, sts14, sts15, sts16, stsb, sickr), dev, rerank (trecqa), "
           "a reranking file ending in .jsonl, transfer (mr, cr, subj, mpqa, sst2, trec, mrpc)",
           raw);
    }
  }
  // Protocol order for STS, whatever order the names came in.
  std::vector<std::string> ordered;
  for (auto n : kStsNames)
    if (std::find(sel.sts.begin(), sel.sts.end(), n) != sel.sts.end()) ordered.emplace_back(n);
  sel.sts = std::move(ordered);
  ordered.clear();
  for (auto n : kTransferNames)
    if (std::find(sel.transfer.begin(), sel.transfer.end(), n) != sel.transfer.end()) ordered.emplace_back(n);
  sel.transfer = std::move(ordered);
  RANKEMB_CHECK(!sel.empty(), ErrorCode::Usage, "no tasks selected in \"{}\"", spec);
  return sel;
}

EvalReport run_eval(const TaskSelection& tasks, const EvalOptions& options, const EmbedFn& embed, Progress& progress) {
  EvalReport report;
  report.text = options.text;
  report.data_dir = options.data_dir.empty() ? default_data_dir() : options.data_dir;
  const fs::path& dir = report.data_dir;

  // Load everything first: a bad file should fail before minutes of encoding.
  std::vector<StsDataset> sts_sets, dev_sets;
  for (const auto& name : tasks.sts) sts_sets.push_back(load_sts_task(dir, name, options.text));
  if (tasks.dev) dev_sets = load_dev_tasks(dir, options.text);
  std::vector<RerankDataset> rerank_sets;
  for (const auto& name : tasks.rerank)
    rerank_sets.push_back(name == "trecqa" ? load_trecqa(dir, "test") : load_rerank_jsonl(name));
  std::vector<TransferDataset> transfer_sets;
  for (const auto& name : tasks.transfer) {
    std::string upper = name;  // the loader takes SentEval's spelling ("MR", "SST2")
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    transfer_sets.push_back(load_transfer(dir, upper));
  }

  EmbeddingTable table;  // shared by all groups: a sentence is embedded once per run
  using Clock = std::chrono::steady_clock;
  auto run_group = [&](std::string_view group, auto&& queue, auto&& score) {
    if (!queue()) return;
    const auto t0 = Clock::now();
    const std::size_t before = table.size();
    table.compute(embed, options.embed_batch, progress);
    const auto t1 = Clock::now();
    score();
    report.timings.push_back({std::string(group), std::chrono::duration<double>(Clock::now() - t0).count(), table.size() - before,
                              std::chrono::duration<double>(t1 - t0).count()});
  };
  auto queue_sts = [&](const std::vector<StsDataset>& sets) {
    for (const auto& ds : sets)
      for (const auto& subset : ds.subsets)
        for (const auto& p : subset.pairs) {
          table.add(p.sentence1);
          table.add(p.sentence2);
        }
    return !sets.empty();
  };
  run_group("sts", [&] { return queue_sts(sts_sets); },
            [&] {
              for (const auto& ds : sts_sets) report.sts.push_back(evaluate_sts(ds, table));
            });
  run_group("dev", [&] { return queue_sts(dev_sets); },
            [&] {
              for (const auto& ds : dev_sets) report.dev.push_back(evaluate_sts(ds, table));
            });
  const auto queue_all = [&](const auto& sets) {
    for (const auto& ds : sets) add_texts(ds, table);
    return !sets.empty();
  };
  run_group("rerank", [&] { return queue_all(rerank_sets); },
            [&] {
              for (const auto& ds : rerank_sets) report.rerank.push_back(evaluate_rerank(ds, table));
            });
  run_group("transfer", [&] { return queue_all(transfer_sets); },
            [&] {
              for (const auto& ds : transfer_sets) report.transfer.push_back(evaluate_transfer(ds, table, options.transfer));
            });
  report.embedding_dim = table.dim();
  report.n_embedded = table.size();
  return report;
}

json report_json(const EvalReport& report) {
  json j = {{"model", report.model},
            {"text", std::string(to_string(report.text))},
            {"data_dir", report.data_dir.string()},
            {"embedding_dim", report.embedding_dim},
            {"n_embedded", report.n_embedded}};
  if (!report.sts.empty()) j["sts"] = sts_group_json(report, report.sts, "sts");
  if (!report.dev.empty()) j["dev"] = sts_group_json(report, report.dev, "dev");
  if (!report.rerank.empty()) {
    json tasks = json::array();
    for (const auto& r : report.rerank)
      tasks.push_back({{"name", r.name},
                       {"display", display_name(r)},
                       {"map", number(r.map)},
                       {"mrr_at_10", number(r.mrr_at_10)},
                       {"n_queries", r.n_queries},
                       {"n_scored", r.n_scored}});
    j["rerank"] = {{"tasks", std::move(tasks)},
                   {"mean_map", number(mean_of(report.rerank, [](const RerankResult& r) { return r.map; }))},
                   {"mean_mrr_at_10", number(mean_of(report.rerank, [](const RerankResult& r) { return r.mrr_at_10; }))},
                   {"seconds", group_timing(report, "rerank").seconds},
                   {"embed_seconds", group_timing(report, "rerank").embed_seconds}};
  }
  if (!report.transfer.empty()) {
    json tasks = json::array();
    for (const auto& r : report.transfer) {
      json t = {{"name", r.name},         {"display", display_name(r)}, {"accuracy", number(r.accuracy)}, {"l2", r.l2},           {"n_train", r.n_train},
                {"n_test", r.n_test},     {"n_fits", r.n_fits},              {"seconds", r.seconds}};
      if (!std::isnan(r.f1)) t["f1"] = r.f1;
      tasks.push_back(std::move(t));
    }
    j["transfer"] = {{"tasks", std::move(tasks)},
                     {"mean_accuracy", number(mean_of(report.transfer, [](const TransferResult& r) { return r.accuracy; }))},
                     {"seconds", group_timing(report, "transfer").seconds},
                     {"embed_seconds", group_timing(report, "transfer").embed_seconds}};
  }
  return j;
}

std::string display_name(const StsResult& r) {
  std::string name = r.name;
  if (name == "STSBenchmark") name = "STS-B";
  else if (name == "SICKRelatedness") name = "SICK-R";
  if (r.split != "test") name += " " + r.split;
  return name;
}

std::string display_name(const RerankResult& r) { return r.name == "trecqa_test" ? "TREC-QA" : r.name; }

std::string display_name(const TransferResult& r) { return r.name == "SST2" ? "SST-2" : r.name; }

std::string format_table(const EvalReport& report) {
  std::string out = fmt::format("model: {}  text: {}  dim: {}\n", report.model, to_string(report.text), report.embedding_dim);
  if (!report.sts.empty()) out += "\n" + sts_section("STS", report.sts);
  if (!report.dev.empty()) out += "\n" + sts_section("Dev (model selection)", report.dev);
  if (!report.rerank.empty()) out += "\n" + rerank_section(report.rerank);
  if (!report.transfer.empty()) out += "\n" + transfer_section(report.transfer);
  std::string times;
  for (const auto& t : report.timings)
    times += fmt::format("{}{} {:.1f} s ({} sentences in {:.1f} s)", times.empty() ? "" : ", ", t.group, t.seconds, t.n_embedded,
                         t.embed_seconds);
  if (!times.empty()) out += "\ntime: " + times + "\n";
  return out;
}

std::string format_comparison(const EvalReport& a, const EvalReport& b) {
  std::string out = fmt::format("A: {}\nB: {}\ntext: {}\n", a.model, b.model, to_string(a.text));
  if (!a.sts.empty() || !b.sts.empty()) out += "\n" + sts_compare_section("STS", a.sts, b.sts);
  if (!a.dev.empty() || !b.dev.empty()) out += "\n" + sts_compare_section("Dev (model selection)", a.dev, b.dev);
  if (!a.rerank.empty() || !b.rerank.empty()) out += "\n" + rerank_compare_section(a.rerank, b.rerank);
  if (!a.transfer.empty() || !b.transfer.empty()) out += "\n" + transfer_compare_section(a.transfer, b.transfer);
  return out;
}

}  // namespace rankemb::eval
