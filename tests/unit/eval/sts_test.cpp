// The whole STS pipeline (reading, pairing, embedding once, cosine, per-subset / pooled / mean /
// weighted-mean correlations) with a toy embedding, against the same toy embedding computed in
// Python with SciPy (scripts/regen/eval_metrics.py -> tests/fixtures/eval/sts_toy.expected.jsonl),
// on the real data in both text variants and on the hand-made fixture data dir.
#include "rankemb/eval/sts.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "rankemb/util/error.h"

namespace ev = rankemb::eval;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::size_t kToyDim = 64;

// Hashed byte trigrams of "<" + text + ">" (FNV-1a, 32 bit), counts in kToyDim buckets; the
// regen script computes the same vectors.
std::vector<float> toy_embed(const std::string& text) {
  const std::string b = "<" + text + ">";
  std::vector<float> v(kToyDim, 0.0f);
  for (std::size_t i = 0; i + 3 <= b.size(); ++i) {
    std::uint32_t h = 0x811C9DC5u;
    for (std::size_t k = i; k < i + 3; ++k) {
      h ^= static_cast<unsigned char>(b[k]);
      h *= 0x01000193u;
    }
    v[h % kToyDim] += 1.0f;
  }
  return v;
}

std::vector<std::vector<float>> toy_batch(const std::vector<std::string>& texts) {
  std::vector<std::vector<float>> out;
  for (const auto& t : texts) out.push_back(toy_embed(t));
  return out;
}

bool close(double got, const json& want) {
  if (want.is_null()) return std::isnan(got);
  return std::abs(got - want.get<double>()) <= 1e-9;
}

std::vector<json> expected_rows(const std::string& data) {
  const auto path = rankemb::test::fixtures_dir() / "eval" / "sts_toy.expected.jsonl";
  std::ifstream in(path);
  EXPECT_TRUE(in) << "missing " << path;
  std::vector<json> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto j = json::parse(line);
    if (j["data"] == data) rows.push_back(std::move(j));
  }
  return rows;
}

ev::StsDataset load(const fs::path& dir, const json& row) {
  const auto variant = ev::parse_text_variant(row["variant"].get<std::string>());
  const auto name = row["name"].get<std::string>();
  const auto split = row["split"].get<std::string>();
  if (name == "STSBenchmark") return ev::load_stsb(dir, split, variant);
  if (name == "SICKRelatedness") return ev::load_sick_r(dir, split, variant);
  return ev::load_sts_year(dir, 2000 + std::stoi(name.substr(3)), variant);
}

// Loads every expected row's dataset, evaluates them all with one embedding table, and compares
// every number; returns the mismatch count.
int compare_with_python(const fs::path& dir, const std::string& data) {
  const auto rows = expected_rows(data);
  EXPECT_FALSE(rows.empty());
  std::vector<ev::StsDataset> sets;
  for (const auto& r : rows) sets.push_back(load(dir, r));
  rankemb::NullProgress progress;
  const auto results = ev::evaluate_sts(sets, toy_batch, {.batch_size = 100}, progress);
  int mismatches = 0;
  auto check = [&](const std::string& what, double got, const json& want) {
    if (close(got, want)) return;
    if (++mismatches <= 8) ADD_FAILURE() << what << ": got " << got << ", scipy " << want;
  };
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const auto& res = results[i];
    const std::string tag = data + " " + r["variant"].get<std::string>() + " " + res.name + " " + res.split;
    const auto& subs = r["subsets"];
    if (subs.size() != res.subsets.size()) {
      ++mismatches;
      ADD_FAILURE() << tag << ": " << res.subsets.size() << " subsets, expected " << subs.size();
      continue;
    }
    for (std::size_t k = 0; k < subs.size(); ++k) {
      const auto& [name, c] = res.subsets[k];
      const std::string st = tag + " " + name;
      if (subs[k]["name"] != name || subs[k]["n"].get<std::size_t>() != c.n) {
        ++mismatches;
        ADD_FAILURE() << st << ": n " << c.n << ", expected " << subs[k]["name"] << " n " << subs[k]["n"];
      }
      check(st + " spearman", c.spearman, subs[k]["spearman"]);
      check(st + " pearson", c.pearson, subs[k]["pearson"]);
    }
    EXPECT_EQ(res.all.n, r["all"]["n"].get<std::size_t>()) << tag;
    check(tag + " all spearman", res.all.spearman, r["all"]["spearman"]);
    check(tag + " all pearson", res.all.pearson, r["all"]["pearson"]);
    check(tag + " mean spearman", res.mean_spearman, r["mean_spearman"]);
    check(tag + " mean pearson", res.mean_pearson, r["mean_pearson"]);
    check(tag + " wmean spearman", res.wmean_spearman, r["wmean_spearman"]);
    check(tag + " wmean pearson", res.wmean_pearson, r["wmean_pearson"]);
  }
  return mismatches;
}

}  // namespace

TEST(EvalSts, ToyPipelineMatchesPythonOnFixtures) {
  EXPECT_EQ(compare_with_python(rankemb::test::fixtures_dir() / "eval" / "data", "fixture"), 0);
}

TEST(EvalSts, ToyPipelineMatchesPythonOnRealData) {
  const fs::path data = rankemb::test::data_dir();
  ASSERT_TRUE(fs::exists(data / "senteval")) << data << " has no senteval/; set RANKEMB_DATA_DIR";
  EXPECT_EQ(compare_with_python(data, "real"), 0);
}

TEST(EvalSts, EachDistinctSentenceIsEmbeddedOnce) {
  const fs::path dir = rankemb::test::fixtures_dir() / "eval" / "data";
  std::vector<ev::StsDataset> sets = {ev::load_sts_year(dir, 2015, ev::TextVariant::SentEval),
                                      ev::load_stsb(dir, "test", ev::TextVariant::SentEval),
                                      ev::load_stsb(dir, "test", ev::TextVariant::SentEval)};
  std::set<std::string> distinct;
  for (const auto& ds : sets)
    for (const auto& s : ds.subsets)
      for (const auto& p : s.pairs) distinct.insert({p.sentence1, p.sentence2});
  std::vector<std::string> seen;
  std::size_t calls = 0;
  auto counting = [&](const std::vector<std::string>& texts) {
    ++calls;
    EXPECT_LE(texts.size(), 7u);
    seen.insert(seen.end(), texts.begin(), texts.end());
    return toy_batch(texts);
  };
  rankemb::NullProgress progress;
  const auto results = ev::evaluate_sts(sets, counting, {.batch_size = 7}, progress);
  EXPECT_EQ(seen.size(), distinct.size());
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), distinct);
  EXPECT_EQ(calls, (distinct.size() + 6) / 7);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[1].all.spearman, results[2].all.spearman);
  // STS-B has one subset, so its pooled, mean and weighted-mean numbers coincide.
  EXPECT_DOUBLE_EQ(results[1].all.spearman, results[1].mean_spearman);
  EXPECT_DOUBLE_EQ(results[1].all.spearman, results[1].wmean_spearman);
}

TEST(EvalSts, BadCallbackIsAnError) {
  const fs::path dir = rankemb::test::fixtures_dir() / "eval" / "data";
  const std::vector<ev::StsDataset> sets = {ev::load_stsb(dir, "dev", ev::TextVariant::SentEval)};
  rankemb::NullProgress progress;
  auto too_few = [](const std::vector<std::string>& t) { return std::vector<std::vector<float>>(t.size() - 1, std::vector<float>(4, 1.0f)); };
  EXPECT_THROW(ev::evaluate_sts(sets, too_few, {}, progress), rankemb::Error);
  int call = 0;
  auto ragged = [&](const std::vector<std::string>& t) {
    return std::vector<std::vector<float>>(t.size(), std::vector<float>(++call == 1 ? 4 : 5, 1.0f));
  };
  EXPECT_THROW(ev::evaluate_sts(sets, ragged, {.batch_size = 2}, progress), rankemb::Error);
  ev::EmbeddingTable table;
  EXPECT_THROW(table.get("never added"), rankemb::Error);
}

TEST(EvalSts, DevTasksAreStsbAndSickDev) {
  const fs::path dir = rankemb::test::fixtures_dir() / "eval" / "data";
  const auto dev = ev::load_dev_tasks(dir, ev::TextVariant::SentEval);
  ASSERT_EQ(dev.size(), 2u);
  EXPECT_EQ(dev[0].name, "STSBenchmark");
  EXPECT_EQ(dev[1].name, "SICKRelatedness");
  EXPECT_EQ(dev[1].split, "dev");
  rankemb::NullProgress progress;
  const auto res = ev::evaluate_sts(dev, toy_batch, {}, progress);
  EXPECT_DOUBLE_EQ(ev::mean_spearman(res), (res[0].all.spearman + res[1].all.spearman) / 2);
}
