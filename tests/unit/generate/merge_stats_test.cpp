// Sharded runs merged back into one file, merge errors, and the chain quality report against
// hand-computed numbers.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "fake_generator.h"
#include "rankemb/generate/chain_merge.h"
#include "rankemb/generate/chain_record.h"
#include "rankemb/generate/chain_runner.h"
#include "rankemb/generate/chain_stats.h"
#include "rankemb/generate/seeds.h"
#include "rankemb/util/progress.h"

namespace rankemb::generate::test {
namespace {

std::string seed_text() {
  std::string t;
  for (int i = 0; i < 23; ++i) t += i % 7 == 3 ? "\n" : fmt::format("Seed sentence number {}.\n", i);
  return t;
}

std::string answer(const StepRequest& r) {
  if (r.chain_id == 5 && r.step == 2) return "broken\nline";
  return default_answer(r);
}

std::filesystem::path run_shard(const TempDir& dir, const std::string& name, std::optional<std::size_t> limit,
                                const Shard& shard, FakeGenerator::Options f = {}) {
  const auto all = parse_seeds(seed_text(), "seeds.txt");
  f.answer = answer;
  FakeGenerator gen(f);
  RunOptions o;
  o.steps = 4;
  o.output = dir / name;
  o.seed_file_name = "seeds.txt";
  o.seed_file_hash = fnv1a64_hex(seed_text());
  o.seed_file_size = seed_text().size();
  o.shard = shard;
  o.limit = limit;
  NullProgress p;
  run_chains(gen, select_seeds(all, limit, shard), o, p);
  return o.output;
}

FakeGenerator::Options scrambled(unsigned s, std::size_t cap) {
  FakeGenerator::Options f;
  f.scramble = s;
  f.capacity = cap;
  return f;
}

TEST(ChainMerge, ShardsMergeToTheUnshardedRun) {
  TempDir dir;
  for (const std::optional<std::size_t> limit : {std::optional<std::size_t>{}, std::optional<std::size_t>{11}}) {
    const auto whole = run_shard(dir, "whole.jsonl", limit, {}, scrambled(1, 4));
    std::vector<std::filesystem::path> parts;
    for (std::size_t i = 0; i < 3; ++i)
      parts.push_back(run_shard(dir, fmt::format("part{}.jsonl", i), limit, {i, 3}, scrambled(10 + i, 2 + i)));
    std::reverse(parts.begin(), parts.end());  // input order must not matter
    const MergeSummary s = merge_chain_shards(parts, dir / "merged.jsonl");
    EXPECT_EQ(slurp(dir / "merged.jsonl"), slurp(whole)) << "limit " << (limit ? *limit : 0);
    EXPECT_EQ(s.files, 3u);
    EXPECT_EQ(s.chains, limit ? 11u : 20u);
    EXPECT_EQ(s.dropped, 1u);
    for (const auto& p : parts) {
      std::filesystem::remove(p);
      std::filesystem::remove(meta_path(p));
    }
    std::filesystem::remove(whole);
    std::filesystem::remove(meta_path(whole));
  }
}

TEST(ChainMerge, Errors) {
  TempDir dir;
  const auto a = run_shard(dir, "a.jsonl", std::nullopt, {0, 2});
  const auto b = run_shard(dir, "b.jsonl", std::nullopt, {1, 2});
  // The same shard twice: duplicate ids, both places named.
  Error e = expect_error([&] { merge_chain_shards({a, b, a}, dir / "m.jsonl"); });
  EXPECT_EQ(e.code(), ErrorCode::Input);
  EXPECT_NE(std::string(e.what()).find("a.jsonl:1"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("appears twice"), std::string::npos) << e.what();
  EXPECT_FALSE(std::filesystem::exists(dir / "m.jsonl"));
  // A shard from another model.
  auto other = scrambled(1, 3);
  other.model = "other-model";
  const auto c = run_shard(dir, "c.jsonl", std::nullopt, {1, 2}, other);
  e = expect_error([&] { merge_chain_shards({a, c}, dir / "m.jsonl"); });
  EXPECT_EQ(e.code(), ErrorCode::Input);
  EXPECT_NE(std::string(e.what()).find("c.jsonl:1"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("a.jsonl:1"), std::string::npos) << e.what();
  // Records that agree but metas that do not (another seed file).
  std::string meta = slurp(meta_path(b));
  const auto pos = meta.find(fnv1a64_hex(seed_text()));
  ASSERT_NE(pos, std::string::npos);
  meta.replace(pos, 16, "0123456789abcdef");
  spit(meta_path(b), meta);
  e = expect_error([&] { merge_chain_shards({a, b}, dir / "m.jsonl"); });
  EXPECT_EQ(e.code(), ErrorCode::Input);
  EXPECT_NE(std::string(e.what()).find("b.jsonl.meta.json"), std::string::npos) << e.what();
  std::filesystem::remove(meta_path(b));  // without its sidecar, b merges on its records alone
  EXPECT_NO_THROW(merge_chain_shards({a, b}, dir / "m.jsonl"));
  // An unfinished shard.
  const std::string text = slurp(b);
  spit(b, text.substr(0, text.size() - 5));
  e = expect_error([&] { merge_chain_shards({a, b}, dir / "m2.jsonl"); });
  EXPECT_EQ(e.code(), ErrorCode::Input);
  EXPECT_NE(std::string(e.what()).find("b.jsonl"), std::string::npos) << e.what();
  // A malformed line.
  spit(b, text + "{\"id\": 99}\n");
  e = expect_error([&] { merge_chain_shards({a, b}, dir / "m2.jsonl"); });
  EXPECT_NE(std::string(e.what()).find(fmt::format("b.jsonl:{}", std::count(text.begin(), text.end(), '\n') + 1)),
            std::string::npos)
      << e.what();
  EXPECT_EQ(expect_error([&] { merge_chain_shards({}, dir / "m2.jsonl"); }).code(), ErrorCode::Usage);
  EXPECT_EQ(expect_error([&] { merge_chain_shards({a}, a); }).code(), ErrorCode::Usage);
}

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
  eval::EmbedFn judge = [&](const std::vector<std::string>& texts) {
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

TEST(ChainStats, MedianStepsAndUndefinedChains) {
  EXPECT_DOUBLE_EQ(summarize({5, 1, 3}).median, 3.0);
  EXPECT_DOUBLE_EQ(summarize({4, 1, 3, 2}).median, 2.5);
  EXPECT_TRUE(std::isnan(summarize({}).mean));
  // A chain that never moves has no Spearman; 8 steps give step indices 1, 2, 4, 8.
  std::vector<ChainRecord> recs(1);
  recs[0].seed = "x";
  recs[0].sentences.assign(8, "x");
  eval::EmbedFn judge = [](const std::vector<std::string>& t) { return std::vector<std::vector<float>>(t.size(), {1, 1}); };
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
}  // namespace rankemb::generate::test
