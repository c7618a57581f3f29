#include "rankemb/eval/rerank.h"

#include <vector>

#include "rankemb/eval/metrics.h"

namespace rankemb::eval {

void add_texts(const RerankDataset& ds, EmbeddingTable& table) {
  for (const auto& q : ds.queries) {
    table.add(q.query);
    for (const auto& t : q.positive) table.add(t);
    for (const auto& t : q.negative) table.add(t);
  }
}

RerankResult evaluate_rerank(const RerankDataset& ds, const EmbeddingTable& table) {
  RerankResult r;
  r.name = ds.name;
  r.n_queries = ds.queries.size();
  double sum_ap = 0, sum_rr = 0;
  std::vector<double> scores;
  std::vector<bool> relevant;
  for (const auto& q : ds.queries) {
    const auto qv = table.get(q.query);
    scores.clear();
    relevant.clear();
    // Positives before negatives: MTEB's order, which decides MRR ties (see reciprocal_rank_at_k).
    for (const auto& t : q.positive) {
      scores.push_back(cosine(qv, table.get(t)));
      relevant.push_back(true);
    }
    for (const auto& t : q.negative) {
      scores.push_back(cosine(qv, table.get(t)));
      relevant.push_back(false);
    }
    const auto m = rank_metrics(scores, relevant, 10);
    if (!m.usable) continue;
    sum_ap += m.average_precision;
    sum_rr += m.reciprocal_rank;
    ++r.n_scored;
  }
  if (r.n_scored > 0) {
    r.map = sum_ap / static_cast<double>(r.n_scored);
    r.mrr_at_10 = sum_rr / static_cast<double>(r.n_scored);
  }
  return r;
}

}  // namespace rankemb::eval
