// search/: FAISS results against a brute-force cosine top-k written here (the independent
// reference), HNSW recall, the index directory round trip and its refusals.
#include "rankemb/search/index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>

#include "common/expect_error.h"
#include "common/temp_dir.h"
#include "rankemb/io/file.h"

namespace rs = rankemb::search;
using rankemb::ErrorCode;
using rankemb::test::expect_error;
using rankemb::test::TempDir;

namespace {

rs::Rows random_rows(std::size_t n, std::size_t dim, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  rs::Rows rows(n, std::vector<float>(dim));
  for (auto& r : rows)
    for (auto& v : r) v = normal(gen);
  return rows;
}

// Brute force: cosine of the query to every row, best k by score (ties by position).
std::vector<rs::Hit> brute_force(const rs::Rows& rows, const std::vector<float>& q, std::size_t k) {
  auto cosine = [](const std::vector<float>& a, const std::vector<float>& b) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
    return ab / std::sqrt(aa * bb);
  };
  std::vector<rs::Hit> all;
  for (std::size_t i = 0; i < rows.size(); ++i) all.push_back({static_cast<std::int64_t>(i), static_cast<float>(cosine(rows[i], q))});
  std::stable_sort(all.begin(), all.end(), [](const rs::Hit& a, const rs::Hit& b) { return a.score > b.score; });
  all.resize(std::min(k, all.size()));
  return all;
}

}  // namespace

TEST(VectorIndex, FlatEqualsBruteForceCosine) {
  const auto rows = random_rows(500, 24, 1);
  const auto queries = random_rows(20, 24, 2);
  const auto index = rs::VectorIndex::build(rows, {.kind = "flat"});
  EXPECT_EQ(index.size(), 500u);
  EXPECT_EQ(index.dim(), 24u);
  const auto hits = index.search(queries, 10);
  for (std::size_t q = 0; q < queries.size(); ++q) {
    const auto want = brute_force(rows, queries[q], 10);
    ASSERT_EQ(hits[q].size(), 10u);
    for (std::size_t j = 0; j < 10; ++j) {
      EXPECT_EQ(hits[q][j].position, want[j].position) << "query " << q << " rank " << j;
      EXPECT_NEAR(hits[q][j].score, want[j].score, 1e-5);
    }
  }
  // k beyond the index size gives every row once.
  EXPECT_EQ(rs::VectorIndex::build(random_rows(3, 24, 3), {}).search({queries[0]}, 10)[0].size(), 3u);
}

TEST(VectorIndex, HnswRecallAgainstExact) {
  const auto rows = random_rows(3000, 32, 4);
  const auto queries = random_rows(100, 32, 5);
  const auto exact = rs::VectorIndex::build(rows, {.kind = "flat"}).search(queries, 10);
  const auto approx = rs::VectorIndex::build(rows, {.kind = "hnsw", .hnsw_m = 16, .ef_construction = 80, .ef_search = 128});
  const double recall = rs::recall_at_k(exact, approx.search(queries, 10), 10);
  EXPECT_GT(recall, 0.9);
  EXPECT_LE(recall, 1.0);
  // recall_at_k itself, by hand: one of two found.
  EXPECT_DOUBLE_EQ(rs::recall_at_k({{{1, 0}, {2, 0}}}, {{{2, 0}, {7, 0}}}, 2), 0.5);
}

TEST(VectorIndex, RejectsBadInput) {
  expect_error([] { (void)rs::VectorIndex::build({}, {}); }, ErrorCode::Usage, "nothing to index");
  expect_error([] { (void)rs::VectorIndex::build({{1, 2}, {1}}, {}); }, ErrorCode::Usage, "vector 1 has 1 values");
  expect_error([] { (void)rs::VectorIndex::build({{1, 2}}, {.kind = "ivf"}); }, ErrorCode::Usage, "ivf");
  const auto index = rs::VectorIndex::build({{1, 2}}, {});
  expect_error([&] { (void)index.search({{1, 2, 3}}, 1); }, ErrorCode::Usage, "query 0 has 3 values");
}

TEST(IndexDir, RoundTripAndRefusals) {
  TempDir tmp("index_dir");
  const auto rows = random_rows(50, 8, 6);
  rs::IndexDir d;
  d.index = rs::VectorIndex::build(rows, {.kind = "hnsw", .hnsw_m = 8, .ef_construction = 40, .ef_search = 32});
  for (std::size_t i = 0; i < rows.size(); ++i) d.ids.push_back(static_cast<std::int64_t>(2 * i + 1)), d.texts.push_back("text " + std::to_string(i));
  d.info = {.model = "m", .probe = rows[0], .settings = {.kind = "hnsw", .hnsw_m = 8, .ef_construction = 40, .ef_search = 32},
            .count = 50, .dim = 8, .recall_at_10 = 0.97, .corpus = "c.txt", .precision = "int8"};
  rs::l2_normalize(d.info.probe);
  const auto dir = tmp.path() / "idx";
  rs::write_index_dir(dir, d);
  const rs::IndexDir back = rs::read_index_dir(dir);
  EXPECT_EQ(back.texts, d.texts);
  EXPECT_EQ(back.ids, d.ids);
  EXPECT_EQ(back.info.settings.ef_search, 32);
  ASSERT_TRUE(back.info.recall_at_10);
  EXPECT_DOUBLE_EQ(*back.info.recall_at_10, 0.97);
  const auto a = d.index.search({rows[3]}, 5), b = back.index.search({rows[3]}, 5);
  ASSERT_EQ(a[0].size(), b[0].size());
  for (std::size_t j = 0; j < a[0].size(); ++j) EXPECT_EQ(a[0][j].position, b[0][j].position);

  // The same model passes; another model (another probe embedding) is refused, and so is the
  // same model in another precision than the index's (recorded: int8 here).
  EXPECT_EQ(back.info.precision, "int8");
  rs::check_same_model(back.info, rows[0], "m", "int8");
  expect_error([&] { rs::check_same_model(back.info, rows[1], "other", "int8"); }, ErrorCode::Usage, {"other", "not the model"});
  expect_error([&] { rs::check_same_model(back.info, {1, 2}, "narrow", "int8"); }, ErrorCode::Usage, "2-wide");
  expect_error([&] { rs::check_same_model(back.info, rows[0], "m", "float32"); }, ErrorCode::Usage,
               {"built with the model in int8", "pass --int8"});
  rs::IndexInfo f32 = back.info;
  f32.precision = "float32";
  rs::check_same_model(f32, rows[0], "m", "bfloat16");  // dtypes mix as before (the probe decides)
  expect_error([&] { rs::check_same_model(f32, rows[0], "m", "int8"); }, ErrorCode::Usage, "run without --int8");
  f32.precision.clear();  // an index from before precision was recorded: the probe decides
  rs::check_same_model(f32, rows[0], "m", "int8");

  // A texts file that does not match the index is an input error naming the directory.
  {
    std::ofstream(dir / "texts.jsonl", std::ios::app) << "{\"id\": 1, \"text\": \"extra\"}\n";
  }
  expect_error([&] { (void)rs::read_index_dir(dir); }, ErrorCode::Input, "51 texts");
  {
    std::ofstream(dir / "texts.jsonl", std::ios::app) << "not json\n";
  }
  expect_error([&] { (void)rs::read_index_dir(dir); }, ErrorCode::Input, "texts.jsonl:52");
  rankemb::io::write_atomic(dir / "index.json", "{\"format\": \"rankemb-index/1\", \"model\": 3}");
  expect_error([&] { (void)rs::read_index_dir(dir); }, ErrorCode::Input, {"index.json", "\"model\""});
  rs::write_index_dir(dir, d);
  rankemb::io::write_atomic(dir / "index.faiss", "garbage");
  expect_error([&] { (void)rs::read_index_dir(dir); }, ErrorCode::Input, {"index.faiss", "not a readable FAISS index"});
  expect_error([&] { (void)rs::read_index_dir(tmp.path() / "missing"); }, ErrorCode::Input, "not an index directory");
}
