#include "rankemb/quality/chain_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "rankemb/eval/metrics.h"
#include "rankemb/eval/sts.h"
#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace rankemb::quality {

using chains::ChainRecord;

ValueStats summarize(std::vector<double> v) {
  ValueStats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  s.min = v.front();
  s.max = v.back();
  const std::size_t h = v.size() / 2;
  s.median = v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
  return s;
}

namespace {
double count_words(std::string_view s) {
  double n = 0;
  bool in_word = false;
  for (const char c : s) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

DriftStats drift_stats(const std::vector<const ChainRecord*>& kept, const EmbedFn& judge,
                       const ChainStatsOptions& options, Progress& progress) {
  DriftStats d;
  eval::EmbeddingTable table;
  for (const ChainRecord* r : kept) {
    if (r->sentences.empty()) continue;
    table.add(r->seed);
    for (const auto& s : r->sentences) table.add(s);
  }
  d.unique_sentences = table.pending();
  table.compute(judge, options.batch_size, progress);

  std::size_t longest = 0;
  for (const ChainRecord* r : kept) longest = std::max(longest, r->sentences.size());
  std::set<std::size_t> wanted;
  for (const std::size_t k : {std::size_t{1}, longest / 4, longest / 2, longest})
    if (longest > 0) wanted.insert(std::max<std::size_t>(1, k));
  std::map<std::size_t, std::pair<double, std::size_t>> at;  // step -> (sum, chains)

  std::vector<double> rhos;
  std::size_t down = 0;
  for (const ChainRecord* r : kept) {
    if (r->sentences.empty()) continue;
    const auto seed = table.get(r->seed);
    std::vector<double> index, sim;
    index.push_back(0);
    sim.push_back(eval::cosine(seed, seed));
    for (const auto& s : r->sentences) {
      index.push_back(static_cast<double>(index.size()));
      sim.push_back(eval::cosine(table.get(s), seed));
    }
    for (std::size_t i = 0; i + 1 < sim.size(); ++i) down += sim[i + 1] < sim[i];
    d.steps_compared += sim.size() - 1;
    for (const std::size_t k : wanted)
      if (k < sim.size()) {
        at[k].first += sim[k];
        ++at[k].second;
      }
    const double rho = eval::spearman(index, sim);
    if (std::isnan(rho)) ++d.undefined;
    else rhos.push_back(rho);
  }
  d.chains = rhos.size();
  if (!rhos.empty()) {
    d.mean_spearman = std::accumulate(rhos.begin(), rhos.end(), 0.0) / static_cast<double>(rhos.size());
    d.monotonicity = -d.mean_spearman;
  }
  if (d.steps_compared > 0) d.share_steps_down = static_cast<double>(down) / static_cast<double>(d.steps_compared);
  for (const auto& [k, v] : at) d.at_steps.push_back({k, v.first / static_cast<double>(v.second), v.second});
  return d;
}

nlohmann::json value_json(const ValueStats& v) {
  const auto num = [](double x) { return std::isnan(x) ? nlohmann::json() : nlohmann::json(x); };
  return {{"n", v.n}, {"mean", num(v.mean)}, {"median", num(v.median)}, {"min", num(v.min)}, {"max", num(v.max)}};
}

std::string value_row(std::string_view name, const ValueStats& v) {
  if (v.n == 0) return fmt::format("{:<28} {:>8}\n", name, "-");
  return fmt::format("{:<28} {:>8.2f} {:>8.2f} {:>8.2f} {:>8.2f} {:>8}\n", name, v.mean, v.median, v.min, v.max, v.n);
}
}  // namespace

ChainStats chain_stats(const std::vector<ChainRecord>& records, const EmbedFn* judge,
                       const ChainStatsOptions& options, Progress& progress) {
  ChainStats st;
  st.chains = records.size();
  std::vector<const ChainRecord*> kept;
  std::vector<double> kept_len, dropped_len, words, seed_words;
  for (const auto& r : records) {
    if (r.kept) {
      ++st.kept;
      kept.push_back(&r);
      kept_len.push_back(static_cast<double>(r.sentences.size()));
      seed_words.push_back(count_words(r.seed));
      for (const auto& s : r.sentences) words.push_back(count_words(s));
    } else {
      ++st.dropped;
      ++st.dropped_by_reason[r.drop_reason.empty() ? "unknown" : r.drop_reason];
      dropped_len.push_back(static_cast<double>(r.sentences.size()));
    }
  }
  st.kept_length = summarize(std::move(kept_len));
  st.dropped_length = summarize(std::move(dropped_len));
  st.words_per_sentence = summarize(std::move(words));
  st.words_per_seed = summarize(std::move(seed_words));
  if (judge) st.drift = drift_stats(kept, *judge, options, progress);
  return st;
}

std::string format_chain_stats(const ChainStats& s) {
  std::string t;
  t += fmt::format("chains {}  kept {}  dropped {}", s.chains, s.kept, s.dropped);
  for (const auto& [reason, n] : s.dropped_by_reason) t += fmt::format("  {} {}", reason, n);
  t += '\n';
  if (s.partial_last_line) t += "(the file ends in an unfinished line, ignored: is a run still writing it?)\n";
  t += fmt::format("\n{:<28} {:>8} {:>8} {:>8} {:>8} {:>8}\n", "", "mean", "median", "min", "max", "n");
  t += value_row("kept chain length", s.kept_length);
  t += value_row("dropped chain length", s.dropped_length);
  t += value_row("words per sentence (kept)", s.words_per_sentence);
  t += value_row("words per seed (kept)", s.words_per_seed);
  if (s.drift) {
    const DriftStats& d = *s.drift;
    t += fmt::format("\ndrift under the judge ({} distinct sentences embedded)\n", d.unique_sentences);
    t += fmt::format("{:<28} {:>8.4f}   (Spearman of step vs similarity to the seed; -1 = monotone)\n",
                     "mean Spearman", d.mean_spearman);
    t += fmt::format("{:<28} {:>8.4f}   (= -mean Spearman; over {} chains, {} undefined)\n", "monotonicity",
                     d.monotonicity, d.chains, d.undefined);
    t += fmt::format("{:<28} {:>8.4f}   (of {} steps i -> i+1, similarity to the seed went down)\n",
                     "share of steps down", d.share_steps_down, d.steps_compared);
    for (const auto& a : d.at_steps)
      t += fmt::format("{:<28} {:>8.4f}   ({} chains)\n", fmt::format("mean similarity at step {}", a.step),
                       a.mean_similarity, a.chains);
  }
  return t;
}

nlohmann::json chain_stats_json(const ChainStats& s) {
  nlohmann::json j;
  j["chains"] = s.chains;
  j["kept"] = s.kept;
  j["dropped"] = s.dropped;
  j["dropped_by_reason"] = s.dropped_by_reason;
  j["partial_last_line"] = s.partial_last_line;
  j["kept_length"] = value_json(s.kept_length);
  j["dropped_length"] = value_json(s.dropped_length);
  j["words_per_sentence"] = value_json(s.words_per_sentence);
  j["words_per_seed"] = value_json(s.words_per_seed);
  if (s.drift) {
    const DriftStats& d = *s.drift;
    const auto num = [](double x) { return std::isnan(x) ? nlohmann::json() : nlohmann::json(x); };
    nlohmann::json at = nlohmann::json::array();
    for (const auto& a : d.at_steps)
      at.push_back({{"step", a.step}, {"mean_similarity", num(a.mean_similarity)}, {"chains", a.chains}});
    j["drift"] = {{"chains", d.chains},
                  {"undefined", d.undefined},
                  {"mean_spearman", num(d.mean_spearman)},
                  {"monotonicity", num(d.monotonicity)},
                  {"steps_compared", d.steps_compared},
                  {"share_steps_down", num(d.share_steps_down)},
                  {"similarity_at_step", at},
                  {"unique_sentences", d.unique_sentences}};
  }
  return j;
}

}  // namespace rankemb::quality
