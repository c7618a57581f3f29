// The chain quality report against hand-computed numbers.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "common/fake_generator.h"
#include "rankemb/chains/record.h"
#include "rankemb/quality/chain_stats.h"
#include "rankemb/util/progress.h"

namespace rankemb::quality::test {
namespace {

using chains::ChainRecord;
using chains::read_chain_records;
using generate::test::expect_error;
using generate::test::spit;
using rankemb::test::TempDir;

// Three chains of 3 steps, similarities to the seed chosen with exact cosines (3-4-5 vectors):
//   A kept: sims 1, .8, .6, 0   -> rho = -1,   3 of 3 steps down
//   B kept: sims 1, 0, .6, -1   -> ranks (4,2,3,1) vs (1,2,3,4): rho = -0.8, 2 of 3 down
//   C dropped (newline) after 2 sentences: not judged.
// Mean rho -0.9, monotonicity 0.9, share down 5/6; n = 3 -> steps {1, 3}: mean sim .4 and -.5.
const char* kStatsFile =
    "{\"id\":0,\"seed\":\"the cat sat\",\"sentences\":[\"a cat was sitting\",\"a feline rested\",\"dogs "
    "run\"],\"guidance\":1.5,\"model\":\"m\",\"steps\":3,\"kept\":true,\"drop_reason\":\"\"}\n"
    "{\"id\":2,\"seed\":\"the cat sat\",\"sentences\":[\"dogs run\",\"a feline rested\",\"stocks fell sharply "
    "today\"],\"guidance\":1.5,\"model\":\"m\",\"steps\":3,\"kept\":true,\"drop_reason\":\"\"}\n"
    "\n"
    "{\"id\":3,\"seed\":\"hello there world\",\"sentences\":[\"hi\",\"bad\\nline\"],\"guidance\":1.5,\"model\":"
    "\"m\",\"steps\":3,\"kept\":false,\"drop_reason\":\"newline\"}\n";

TEST(ChainStats, HandComputedReport) {
  TempDir dir;
  spit(dir / "chains.jsonl", kStatsFile);
  const std::map<std::string, std::vector<float>> vectors = {
      {"the cat sat", {1, 0}},      {"a cat was sitting", {4, 3}}, {"a feline rested", {3, 4}},
      {"dogs run", {0, 1}},         {"stocks fell sharply today", {-1, 0}},
  };
  std::vector<std::string> seen;
  EmbedFn judge = [&](const std::vector<std::string>& texts) {
    std::vector<std::vector<float>> out;
    for (const auto& t : texts) {
      seen.push_back(t);
      out.push_back(vectors.at(t));  // throws (test failure) for a dropped chain's sentence
    }
    return out;
  };
  bool partial = true;
  const auto records = read_chain_records(dir / "chains.jsonl", &partial);
  EXPECT_FALSE(partial);
  ASSERT_EQ(records.size(), 3u);
  NullProgress p;
  const ChainStats s = chain_stats(records, &judge, {.batch_size = 2}, p);
  EXPECT_EQ(s.chains, 3u);
  EXPECT_EQ(s.kept, 2u);
  EXPECT_EQ(s.dropped, 1u);
  EXPECT_EQ(s.dropped_by_reason.at("newline"), 1u);
  EXPECT_DOUBLE_EQ(s.kept_length.mean, 3.0);
  EXPECT_EQ(s.dropped_length.n, 1u);
  EXPECT_DOUBLE_EQ(s.dropped_length.max, 2.0);
  // Words of the 6 generated sentences of kept chains: 4 3 2 | 2 3 4.
  EXPECT_EQ(s.words_per_sentence.n, 6u);
  EXPECT_DOUBLE_EQ(s.words_per_sentence.mean, 3.0);
  EXPECT_DOUBLE_EQ(s.words_per_sentence.median, 3.0);
  EXPECT_DOUBLE_EQ(s.words_per_sentence.min, 2.0);
  EXPECT_DOUBLE_EQ(s.words_per_sentence.max, 4.0);
  EXPECT_DOUBLE_EQ(s.words_per_seed.mean, 3.0);
  ASSERT_TRUE(s.drift.has_value());
  const DriftStats& d = *s.drift;
  EXPECT_EQ(d.unique_sentences, 5u);
  EXPECT_EQ(seen.size(), 5u);  // each distinct sentence embedded once
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 5u);
  EXPECT_EQ(d.chains, 2u);
  EXPECT_EQ(d.undefined, 0u);
  EXPECT_NEAR(d.mean_spearman, -0.9, 1e-12);
  EXPECT_NEAR(d.monotonicity, 0.9, 1e-12);
  EXPECT_EQ(d.steps_compared, 6u);
  EXPECT_NEAR(d.share_steps_down, 5.0 / 6.0, 1e-12);
  ASSERT_EQ(d.at_steps.size(), 2u);
  EXPECT_EQ(d.at_steps[0].step, 1u);
  EXPECT_NEAR(d.at_steps[0].mean_similarity, 0.4, 1e-6);
  EXPECT_EQ(d.at_steps[0].chains, 2u);
  EXPECT_EQ(d.at_steps[1].step, 3u);
  EXPECT_NEAR(d.at_steps[1].mean_similarity, -0.5, 1e-6);

  const auto j = chain_stats_json(s);
  EXPECT_EQ(j["kept"], 2);
  EXPECT_NEAR(j["drift"]["monotonicity"].get<double>(), 0.9, 1e-12);
  const std::string table = format_chain_stats(s);
  EXPECT_NE(table.find("monotonicity"), std::string::npos) << table;
  EXPECT_NE(table.find("0.9000"), std::string::npos) << table;
  EXPECT_NE(table.find("newline 1"), std::string::npos) << table;
}

// The same file with pictures asked for: the band of s_k over chains at every step, worked by
// hand from the sims above (step 1: {0, .8} -> mean .4, sd .4, p10 .08, p90 .72; step 3: {-1, 0}),
// and examples: the first kept chain with its cosine matrix, the first dropped one with its
// similarities (its sentences embedded for that, without counting in unique_sentences).
TEST(ChainStats, StepBandsAndExamples) {
  TempDir dir;
  spit(dir / "chains.jsonl", kStatsFile);
  const std::map<std::string, std::vector<float>> vectors = {
      {"the cat sat", {1, 0}},      {"a cat was sitting", {4, 3}}, {"a feline rested", {3, 4}},
      {"dogs run", {0, 1}},         {"stocks fell sharply today", {-1, 0}}, {"hello there world", {1, 1}},
      {"hi", {1, 0}},               {"bad\nline", {0, 1}},
  };
  std::size_t embedded = 0;
  EmbedFn judge = [&](const std::vector<std::string>& texts) {
    std::vector<std::vector<float>> out;
    for (const auto& t : texts) out.push_back(vectors.at(t));
    embedded += texts.size();
    return out;
  };
  NullProgress p;
  const ChainStats s = chain_stats(read_chain_records(dir / "chains.jsonl"), &judge,
                                   {.batch_size = 0, .examples = 1, .matrices = 1}, p);
  ASSERT_TRUE(s.drift.has_value());
  EXPECT_EQ(s.drift->unique_sentences, 5u);
  EXPECT_EQ(embedded, 8u);
  const auto& b = s.drift->by_step;
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0].chains, 2u);
  EXPECT_NEAR(b[0].mean, 1.0, 1e-6);
  EXPECT_NEAR(b[0].sd, 0.0, 1e-6);
  EXPECT_NEAR(b[1].mean, 0.4, 1e-6);
  EXPECT_NEAR(b[1].sd, 0.4, 1e-6);
  EXPECT_NEAR(b[1].p10, 0.08, 1e-6);
  EXPECT_NEAR(b[1].p90, 0.72, 1e-6);
  EXPECT_NEAR(b[3].mean, -0.5, 1e-6);
  EXPECT_NEAR(b[3].p10, -0.9, 1e-6);
  EXPECT_NEAR(b[3].p90, -0.1, 1e-6);

  ASSERT_EQ(s.examples.size(), 2u);
  const ChainExample& kept = s.examples[0];
  EXPECT_EQ(kept.id, 0u);
  EXPECT_TRUE(kept.kept);
  ASSERT_EQ(kept.sentences.size(), 4u);
  EXPECT_EQ(kept.sentences[0], "the cat sat");
  ASSERT_EQ(kept.similarity.size(), 4u);
  EXPECT_NEAR(kept.similarity[1], 0.8, 1e-6);
  EXPECT_NEAR(kept.similarity[3], 0.0, 1e-6);
  ASSERT_EQ(kept.matrix.size(), 4u);
  EXPECT_NEAR(kept.matrix[1][2], 0.96, 1e-6);
  EXPECT_NEAR(kept.matrix[2][1], 0.96, 1e-6);
  EXPECT_NEAR(kept.matrix[1][3], 0.6, 1e-6);
  EXPECT_NEAR(kept.matrix[3][3], 1.0, 1e-6);
  const ChainExample& dropped = s.examples[1];
  EXPECT_EQ(dropped.id, 3u);
  EXPECT_FALSE(dropped.kept);
  EXPECT_EQ(dropped.drop_reason, "newline");
  ASSERT_EQ(dropped.similarity.size(), 3u);
  EXPECT_NEAR(dropped.similarity[1], std::sqrt(0.5), 1e-6);
  EXPECT_TRUE(dropped.matrix.empty());

  const auto j = chain_stats_json(s);
  EXPECT_NEAR(j["drift"]["by_step"][1]["p90"].get<double>(), 0.72, 1e-6);
  EXPECT_EQ(j["examples"][1]["drop_reason"], "newline");
  EXPECT_NEAR(j["examples"][0]["matrix"][1][2].get<double>(), 0.96, 1e-6);
  // Without a judge the examples still read as text.
  const ChainStats plain = chain_stats(read_chain_records(dir / "chains.jsonl"), nullptr, {.examples = 1}, p);
  ASSERT_EQ(plain.examples.size(), 2u);
  EXPECT_TRUE(plain.examples[0].similarity.empty());
}

TEST(ChainStats, MedianStepsAndUndefinedChains) {
  EXPECT_DOUBLE_EQ(summarize({5, 1, 3}).median, 3.0);
  EXPECT_DOUBLE_EQ(summarize({4, 1, 3, 2}).median, 2.5);
  EXPECT_TRUE(std::isnan(summarize({}).mean));
  // A chain that never moves has no Spearman; 8 steps give step indices 1, 2, 4, 8.
  std::vector<ChainRecord> recs(1);
  recs[0].seed = "x";
  recs[0].sentences.assign(8, "x");
  EmbedFn judge = [](const std::vector<std::string>& t) { return std::vector<std::vector<float>>(t.size(), {1, 1}); };
  NullProgress p;
  const auto s = chain_stats(recs, &judge, {}, p);
  EXPECT_EQ(s.drift->undefined, 1u);
  EXPECT_EQ(s.drift->chains, 0u);
  EXPECT_TRUE(std::isnan(s.drift->mean_spearman));
  ASSERT_EQ(s.drift->at_steps.size(), 4u);
  EXPECT_EQ(s.drift->at_steps[2].step, 4u);
  EXPECT_EQ(chain_stats_json(s)["drift"]["mean_spearman"], nullptr);
}

TEST(ChainStats, UnfinishedLastLineIsIgnoredAndBadLinesNamed) {
  TempDir dir;
  std::string text = kStatsFile;
  spit(dir / "running.jsonl", text + "{\"id\":4,\"se");
  bool partial = false;
  EXPECT_EQ(read_chain_records(dir / "running.jsonl", &partial).size(), 3u);
  EXPECT_TRUE(partial);
  spit(dir / "bad.jsonl", text + "not json\n");
  const Error e = expect_error([&] { read_chain_records(dir / "bad.jsonl"); });
  EXPECT_EQ(e.code(), ErrorCode::Input);
  EXPECT_NE(std::string(e.what()).find("bad.jsonl:5"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace rankemb::quality::test
