// The shuffled-order control: permutations against an independent Python implementation of the
// same Fisher-Yates over SplitMix64 (its first output for state 0 is the published 0xE220A8397B1DCDAF),
// the seed staying first, and the file round trip.
#include <gtest/gtest.h>

#include "common/expect_error.h"
#include "common/temp_dir.h"
#include "rankemb/chains/shuffle.h"
#include "rankemb/io/file.h"

namespace rankemb::chains {
namespace {

using Sentences = std::vector<std::string>;

ChainRecord record(std::uint64_t id) {
  ChainRecord r;
  r.id = id;
  r.seed = "x0";
  r.sentences = {"a", "b", "c", "d", "e"};
  r.model = "lexical";
  r.steps = 5;
  return r;
}

TEST(ShuffleChains, MatchesIndependentImplementation) {
  // Expected orders from scripts/regen/shuffle_reference.py (an independent Python implementation).
  ChainRecord r = record(3);
  shuffle_sentences(r, 7);
  EXPECT_EQ(r.sentences, (Sentences{"a", "c", "b", "d", "e"}));
  EXPECT_EQ(r.model, "lexical shuffled(seed 7)");
  ChainRecord other_id = record(4);
  shuffle_sentences(other_id, 7);
  EXPECT_EQ(other_id.sentences, (Sentences{"b", "a", "c", "d", "e"}));
  ChainRecord other_seed = record(3);
  shuffle_sentences(other_seed, 8);
  EXPECT_EQ(other_seed.sentences, (Sentences{"c", "e", "d", "a", "b"}));
}

TEST(ShuffleChains, FileRoundTripKeepsEverySentence) {
  rankemb::test::TempDir dir("shuffle");
  std::string text;
  for (std::uint64_t id = 0; id < 20; ++id) {
    ChainRecord r = record(id);
    if (id == 5) {  // a dropped chain is shuffled too, and keeps its reason
      r.kept = false;
      r.drop_reason = "repetition";
      r.sentences.pop_back();
    }
    text += format_chain_record(r) + "\n";
  }
  io::write_atomic(dir.path() / "chains.jsonl", text);
  const ShuffleSummary s = shuffle_chain_file(dir.path() / "chains.jsonl", dir.path() / "shuffled.jsonl", 11);
  EXPECT_EQ(s.chains, 20u);
  EXPECT_GT(s.moved, 15u);  // 1 in 120 permutations of five is the identity
  const auto out = read_chain_records(dir.path() / "shuffled.jsonl");
  ASSERT_EQ(out.size(), 20u);
  for (const auto& r : out) {
    ChainRecord want = record(r.id);
    if (r.id == 5) want.sentences.pop_back();
    Sentences sorted = r.sentences;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, want.sentences);
    EXPECT_EQ(r.seed, want.seed);
    EXPECT_EQ(r.steps, want.steps);
    EXPECT_EQ(r.kept, r.id != 5);
    EXPECT_EQ(r.drop_reason, r.id == 5 ? "repetition" : "");
    ChainRecord again = want;
    shuffle_sentences(again, 11);
    EXPECT_EQ(r.sentences, again.sentences);  // each chain's order depends on seed and id only
  }
  rankemb::test::expect_error([&] { shuffle_chain_file(dir.path() / "chains.jsonl", dir.path() / "chains.jsonl", 1); },
                              ErrorCode::Usage, {"chains.jsonl"});
  io::write_atomic(dir.path() / "bad.jsonl", "{\"id\":1}\n");
  rankemb::test::expect_error([&] { shuffle_chain_file(dir.path() / "bad.jsonl", dir.path() / "x.jsonl", 1); }, ErrorCode::Input,
                              {"bad.jsonl:1"});
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "x.jsonl"));
  // An interrupted file (a killed writer's partial last record) is refused, not half-shuffled.
  io::write_atomic(dir.path() / "cut.jsonl", format_chain_record(record(0)) + "\n" + format_chain_record(record(1)).substr(0, 20));
  rankemb::test::expect_error([&] { shuffle_chain_file(dir.path() / "cut.jsonl", dir.path() / "y.jsonl", 1); },
                              ErrorCode::Input, {"cut.jsonl", "unfinished"});
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "y.jsonl"));
}

}  // namespace
}  // namespace rankemb::chains
