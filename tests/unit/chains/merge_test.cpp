// Sharded runs merged back into one file, byte-identical to one unsharded run, and merge errors.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/fake_generator.h"
#include "rankemb/chains/merge.h"
#include "rankemb/chains/settings.h"
#include "rankemb/generate/chain_runner.h"
#include "rankemb/generate/seeds.h"
#include "rankemb/util/progress.h"

namespace rankemb::generate::test {
using chains::merge_chain_shards;
using chains::MergeSummary;
using chains::meta_path;
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

// Issue 17: merge refuses incomplete input that the sidecars can expose.
TEST(ChainMerge, RefusesMissingOrUnfinishedShards) {
  TempDir dir;
  std::vector<std::filesystem::path> parts;
  for (std::size_t i = 0; i < 4; ++i) parts.push_back(run_shard(dir, fmt::format("p{}.jsonl", i), std::nullopt, {i, 4}));
  // 3 of 4 shards.
  Error e = expect_error([&] { merge_chain_shards({parts[0], parts[1], parts[3]}, dir / "m.jsonl"); });
  EXPECT_EQ(e.code(), ErrorCode::Input);
  EXPECT_NE(std::string(e.what()).find("shard 2/4"), std::string::npos) << e.what();
  EXPECT_FALSE(std::filesystem::exists(dir / "m.jsonl"));
  // A shard killed between lines: complete lines, but fewer chains than its seeds.
  const std::string text = slurp(parts[2]);
  spit(parts[2], text.substr(0, text.find('\n') + 1));
  e = expect_error([&] { merge_chain_shards(parts, dir / "m.jsonl"); });
  EXPECT_EQ(e.code(), ErrorCode::Input);
  EXPECT_NE(std::string(e.what()).find("p2.jsonl: holds 1 chains"), std::string::npos) << e.what();
  spit(parts[2], text);
  EXPECT_EQ(merge_chain_shards(parts, dir / "m.jsonl").chains, 20u);
  // A directory is not a chain file; an output that is an input is refused.
  EXPECT_EQ(expect_error([&] { merge_chain_shards({dir.path()}, dir / "d.jsonl"); }).code(), ErrorCode::Input);
  EXPECT_EQ(expect_error([&] { merge_chain_shards(parts, parts[1]); }).code(), ErrorCode::Usage);
}

}  // namespace
}  // namespace rankemb::generate::test
