#include "rankemb/eval/sts.h"

#include <algorithm>

#include "rankemb/eval/metrics.h"
#include "rankemb/util/error.h"

namespace rankemb::eval {

namespace fs = std::filesystem;

void EmbeddingTable::add(const std::string& text) {
  if (index_.emplace(text, n_done_ + pending_.size()).second) pending_.push_back(text);
}

void EmbeddingTable::compute(const EmbedFn& embed, std::size_t batch_size, Progress& progress) {
  if (pending_.empty()) return;
  const std::size_t step = batch_size == 0 ? pending_.size() : batch_size;
  progress.start("embedding", pending_.size(), "sentences");
  std::vector<std::string> batch;
  for (std::size_t b = 0; b < pending_.size(); b += step) {
    const std::size_t e = std::min(pending_.size(), b + step);
    batch.assign(pending_.begin() + static_cast<std::ptrdiff_t>(b), pending_.begin() + static_cast<std::ptrdiff_t>(e));
    const auto vecs = embed(batch);
    RANKEMB_CHECK(vecs.size() == batch.size(), ErrorCode::Other, "embedding callback returned {} vectors for {} texts", vecs.size(),
                  batch.size());
    for (const auto& v : vecs) {
      if (dim_ == 0) dim_ = v.size();
      RANKEMB_CHECK(!v.empty() && v.size() == dim_, ErrorCode::Other, "embedding callback returned a vector of size {}, expected {}",
                    v.size(), dim_);
      rows_.insert(rows_.end(), v.begin(), v.end());
    }
    n_done_ += vecs.size();
    progress.advance(vecs.size());
  }
  progress.finish();
  pending_.clear();
}

std::span<const float> EmbeddingTable::get(const std::string& text) const {
  const auto it = index_.find(text);
  RANKEMB_CHECK(it != index_.end() && it->second < n_done_, ErrorCode::Other, "no embedding computed for \"{}\"", text);
  return std::span<const float>(rows_).subspan(it->second * dim_, dim_);
}

StsResult evaluate_sts(const StsDataset& ds, const EmbeddingTable& table) {
  StsResult r;
  r.name = ds.name;
  r.split = ds.split;
  r.variant = ds.variant;
  r.skipped = ds.skipped;
  r.n_unscored = ds.n_unscored;
  std::vector<double> all_sys, all_gold;
  double total = 0;
  for (const auto& subset : ds.subsets) {
    std::vector<double> sys, gold;
    sys.reserve(subset.pairs.size());
    gold.reserve(subset.pairs.size());
    for (const auto& p : subset.pairs) {
      sys.push_back(cosine(table.get(p.sentence1), table.get(p.sentence2)));
      gold.push_back(p.score);
    }
    Correlation c{spearman(sys, gold), pearson(sys, gold), sys.size()};
    r.subsets.emplace_back(subset.name, c);
    all_sys.insert(all_sys.end(), sys.begin(), sys.end());
    all_gold.insert(all_gold.end(), gold.begin(), gold.end());
    r.mean_spearman += c.spearman;
    r.mean_pearson += c.pearson;
    r.wmean_spearman += c.spearman * static_cast<double>(c.n);
    r.wmean_pearson += c.pearson * static_cast<double>(c.n);
    total += static_cast<double>(c.n);
  }
  const auto k = static_cast<double>(r.subsets.size());
  if (k > 0) {
    r.mean_spearman /= k;
    r.mean_pearson /= k;
  }
  if (total > 0) {
    r.wmean_spearman /= total;
    r.wmean_pearson /= total;
  }
  r.all = {spearman(all_sys, all_gold), pearson(all_sys, all_gold), all_sys.size()};
  return r;
}

std::vector<StsResult> evaluate_sts(const std::vector<StsDataset>& sets, const EmbedFn& embed, const StsOptions& options,
                                    Progress& progress) {
  EmbeddingTable table;
  for (const auto& ds : sets)
    for (const auto& subset : ds.subsets)
      for (const auto& p : subset.pairs) {
        table.add(p.sentence1);
        table.add(p.sentence2);
      }
  table.compute(embed, options.batch_size, progress);
  std::vector<StsResult> out;
  out.reserve(sets.size());
  for (const auto& ds : sets) out.push_back(evaluate_sts(ds, table));
  return out;
}

std::vector<StsDataset> load_sts_tasks(const fs::path& data_dir, TextVariant variant) {
  std::vector<StsDataset> sets;
  for (int year = 2012; year <= 2016; ++year) sets.push_back(load_sts_year(data_dir, year, variant));
  sets.push_back(load_stsb(data_dir, "test", variant));
  sets.push_back(load_sick_r(data_dir, "test", variant));
  return sets;
}

std::vector<StsDataset> load_dev_tasks(const fs::path& data_dir, TextVariant variant) {
  std::vector<StsDataset> sets;
  sets.push_back(load_stsb(data_dir, "dev", variant));
  sets.push_back(load_sick_r(data_dir, "dev", variant));
  return sets;
}

double mean_spearman(const std::vector<StsResult>& results) {
  if (results.empty()) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (const auto& r : results) s += r.all.spearman;
  return s / static_cast<double>(results.size());
}

}  // namespace rankemb::eval
