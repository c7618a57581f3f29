// The reranking evaluator (MTEB's RerankingEvaluator protocol): each query's candidates
// (positives first, then negatives) are scored by the cosine of their embedding with the query's,
// then average precision and reciprocal rank within the top 10 are computed per query and averaged
// over the queries that have at least one positive and one negative. No libtorch: embeddings come
// from an EmbeddingTable, so a sentence shared by several queries or tasks is embedded once.
#pragma once

#include <cstddef>
#include <limits>
#include <string>

#include "rankemb/eval/datasets.h"
#include "rankemb/eval/sts.h"

namespace rankemb::eval {

struct RerankResult {
  std::string name;                                          // dataset name, e.g. "trecqa_test"
  double map = std::numeric_limits<double>::quiet_NaN();     // mean average precision, in [0, 1]
  double mrr_at_10 = std::numeric_limits<double>::quiet_NaN();  // mean reciprocal rank @10, in [0, 1]
  std::size_t n_queries = 0;  // queries in the file
  std::size_t n_scored = 0;   // queries with >= 1 positive and >= 1 negative (the ones averaged)
};

// Queues the query and candidate texts of `ds` in `table`.
void add_texts(const RerankDataset& ds, EmbeddingTable& table);

// Scores `ds` with embeddings already in `table`. MAP / MRR are NaN when no query is usable.
RerankResult evaluate_rerank(const RerankDataset& ds, const EmbeddingTable& table);

}  // namespace rankemb::eval
