#include "rankemb/quality/chain_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "rankemb/eval/metrics.h"
#include "rankemb/eval/sts.h"
#include "rankemb/io/file.h"
#include "rankemb/models/embed.h"
#include "rankemb/models/encoder.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"

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

void add_chains(eval::EmbeddingTable& table, const std::vector<const ChainRecord*>& records) {
  for (const ChainRecord* r : records) {
    if (r->sentences.empty()) continue;
    table.add(r->seed);
    for (const auto& s : r->sentences) table.add(s);
  }
}

// s_0..s_n of one chain: each sentence's cosine with the seed (s_0 = cos(seed, seed)).
std::vector<double> similarity_to_seed(const ChainRecord& r, const eval::EmbeddingTable& table) {
  const auto seed = table.get(r.seed);
  std::vector<double> sim{eval::cosine(seed, seed)};
  for (const auto& s : r.sentences) sim.push_back(eval::cosine(table.get(s), seed));
  return sim;
}

// The q-quantile of sorted values, interpolating linearly between order statistics (NumPy's
// default "linear" method).
double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double at = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(at));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - static_cast<double>(lo));
}

DriftStats::StepBand step_band(std::size_t step, std::vector<double> values) {
  DriftStats::StepBand b{.step = step, .chains = values.size()};
  if (values.empty()) return b;
  std::sort(values.begin(), values.end());
  const double n = static_cast<double>(values.size());
  b.mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
  double ss = 0;
  for (const double v : values) ss += (v - b.mean) * (v - b.mean);
  b.sd = std::sqrt(ss / n);
  b.p10 = quantile(values, 0.1);
  b.p90 = quantile(values, 0.9);
  return b;
}

DriftStats drift_stats(const std::vector<const ChainRecord*>& kept, const eval::EmbeddingTable& table) {
  DriftStats d;
  std::size_t longest = 0;
  for (const ChainRecord* r : kept) longest = std::max(longest, r->sentences.size());
  std::set<std::size_t> wanted;
  for (const std::size_t k : {std::size_t{1}, longest / 4, longest / 2, longest})
    if (longest > 0) wanted.insert(std::max<std::size_t>(1, k));
  std::vector<std::vector<double>> at_step(longest + 1);  // s_k of every chain that reaches step k

  std::vector<double> rhos;
  std::size_t down = 0;
  for (const ChainRecord* r : kept) {
    if (r->sentences.empty()) continue;
    const std::vector<double> sim = similarity_to_seed(*r, table);
    std::vector<double> index(sim.size());
    std::iota(index.begin(), index.end(), 0.0);
    for (std::size_t i = 0; i + 1 < sim.size(); ++i) down += sim[i + 1] < sim[i];
    d.steps_compared += sim.size() - 1;
    for (std::size_t k = 0; k < sim.size(); ++k) at_step[k].push_back(sim[k]);
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
  for (const std::size_t k : wanted) {
    const auto& v = at_step[k];
    if (!v.empty())
      d.at_steps.push_back({k, std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()), v.size()});
  }
  for (std::size_t k = 0; k < at_step.size(); ++k)
    if (!at_step[k].empty()) d.by_step.push_back(step_band(k, std::move(at_step[k])));
  return d;
}

// The first `n` kept and the first `n` dropped records, in file order.
std::vector<const ChainRecord*> pick_examples(const std::vector<ChainRecord>& records, std::size_t n) {
  std::vector<const ChainRecord*> kept, dropped;
  for (const auto& r : records) {
    auto& into = r.kept ? kept : dropped;
    if (into.size() < n) into.push_back(&r);
  }
  kept.insert(kept.end(), dropped.begin(), dropped.end());
  return kept;
}

std::vector<ChainExample> make_examples(const std::vector<const ChainRecord*>& picked, const eval::EmbeddingTable* table,
                                        std::size_t matrices) {
  std::vector<ChainExample> out;
  for (const ChainRecord* r : picked) {
    ChainExample e{.id = r->id, .kept = r->kept, .drop_reason = r->drop_reason, .sentences = {r->seed}};
    e.sentences.insert(e.sentences.end(), r->sentences.begin(), r->sentences.end());
    if (table && !r->sentences.empty()) {
      e.similarity = similarity_to_seed(*r, *table);
      if (r->kept && matrices > 0) {
        --matrices;
        for (const auto& a : e.sentences) {
          e.matrix.emplace_back();
          for (const auto& b : e.sentences) e.matrix.back().push_back(eval::cosine(table->get(a), table->get(b)));
        }
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

nlohmann::json num(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); }
nlohmann::json numbers(const std::vector<double>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (const double x : v) a.push_back(num(x));
  return a;
}

nlohmann::json value_json(const ValueStats& v) {
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
  const std::vector<const ChainRecord*> examples = pick_examples(records, options.examples);
  eval::EmbeddingTable table;
  if (judge) {
    add_chains(table, kept);
    const std::size_t unique = table.pending();
    // The statistics' sentences first, on their own: batches that also held the examples would
    // group (and pad) them differently and move the drift numbers in the last digits.
    table.compute(*judge, options.batch_size, progress);
    add_chains(table, examples);
    table.compute(*judge, options.batch_size, progress);
    st.drift = drift_stats(kept, table);
    st.drift->unique_sentences = unique;
  }
  st.examples = make_examples(examples, judge ? &table : nullptr, options.matrices);
  return st;
}

ChainStats chain_file_stats(const std::filesystem::path& file, const Judge& judge, const ChainStatsOptions& options,
                            Progress& progress) {
  bool partial = false;
  const auto records = chains::read_chain_records(file, &partial);
  ChainStats stats;
  if (judge.model.empty()) {
    stats = chain_stats(records, nullptr, options, progress);
  } else {
    auto encoder = models::load_encoder(judge.model, {.dtype = judge.dtype});
    log::info("judge {} (pooler {}, dim {}, {})", judge.model.string(), models::pooler_name(encoder->pooler()),
              encoder->dim(), dtype_name(judge.dtype));
    const auto embed = models::encoder_embed_fn(*encoder, {.batch = judge.batch}, progress);
    NullProgress quiet;  // the encoder reports progress itself
    ChainStatsOptions all_at_once = options;
    all_at_once.batch_size = 0;
    stats = chain_stats(records, &embed, all_at_once, quiet);
  }
  stats.partial_last_line = partial;
  return stats;
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
    nlohmann::json at = nlohmann::json::array();
    for (const auto& a : d.at_steps)
      at.push_back({{"step", a.step}, {"mean_similarity", num(a.mean_similarity)}, {"chains", a.chains}});
    nlohmann::json by_step = nlohmann::json::array();
    for (const auto& b : d.by_step)
      by_step.push_back({{"step", b.step}, {"chains", b.chains}, {"mean", num(b.mean)}, {"sd", num(b.sd)},
                         {"p10", num(b.p10)}, {"p90", num(b.p90)}});
    j["drift"] = {{"chains", d.chains},
                  {"undefined", d.undefined},
                  {"mean_spearman", num(d.mean_spearman)},
                  {"monotonicity", num(d.monotonicity)},
                  {"steps_compared", d.steps_compared},
                  {"share_steps_down", num(d.share_steps_down)},
                  {"similarity_at_step", at},
                  {"by_step", by_step},
                  {"unique_sentences", d.unique_sentences}};
  }
  if (!s.examples.empty()) {
    nlohmann::json examples = nlohmann::json::array();
    for (const auto& e : s.examples) {
      nlohmann::json x = {{"id", e.id}, {"kept", e.kept}, {"drop_reason", e.drop_reason}, {"sentences", e.sentences}};
      if (!e.similarity.empty()) x["similarity"] = numbers(e.similarity);
      if (!e.matrix.empty()) {
        x["matrix"] = nlohmann::json::array();
        for (const auto& row : e.matrix) x["matrix"].push_back(numbers(row));
      }
      examples.push_back(std::move(x));
    }
    j["examples"] = std::move(examples);
  }
  return j;
}

}  // namespace rankemb::quality
