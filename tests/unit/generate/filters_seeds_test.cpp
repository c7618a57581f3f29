// The authors' chain filters (seed counted in the repetition rule) and the seed file reader.
#include <gtest/gtest.h>

#include "common/fake_generator.h"
#include "rankemb/generate/filters.h"
#include "rankemb/generate/seeds.h"

namespace rankemb::generate::test {
namespace {

using V = std::vector<std::string>;

TEST(Filters, StepVerdicts) {
  EXPECT_EQ(check_step("A plain sentence."), DropReason::None);
  EXPECT_EQ(check_step("two\nlines"), DropReason::Newline);
  EXPECT_EQ(check_step("\n"), DropReason::Newline);
  EXPECT_EQ(check_step(""), DropReason::Empty);
  EXPECT_EQ(check_step("carriage\rreturn"), DropReason::None);  // the authors test '\n' only
  EXPECT_EQ(drop_reason_name(DropReason::Newline), "newline");
  EXPECT_EQ(drop_reason_name(DropReason::Empty), "empty");
  EXPECT_EQ(drop_reason_name(DropReason::Repetition), "repetition");
  EXPECT_EQ(drop_reason_name(DropReason::None), "");
}

TEST(Filters, RepetitionRuleCountsTheSeedLikeTheAuthors) {
  struct Case {
    const char* name;
    std::string seed;
    V sentences;
    bool repetitive;
  };
  const std::vector<Case> cases = {
      {"no repeats", "s", {"a", "b", "c"}, false},
      {"last three times", "s", {"a", "b", "a", "c", "a"}, true},
      {"last twice only", "s", {"a", "b", "c", "a"}, false},
      {"second-to-last three times", "s", {"a", "a", "b", "a", "c"}, true},
      {"second-to-last twice", "s", {"a", "b", "a", "c"}, false},
      {"three times in the middle only", "s", {"a", "a", "a", "b", "c"}, false},
      {"seed makes the third occurrence of the last", "x", {"y", "x", "x"}, true},
      {"seed makes the third of the second-to-last", "x", {"x", "y", "x", "z"}, true},
      {"last four times", "s", {"a", "a", "a", "a"}, true},
      {"one step echoing the seed", "s", {"s"}, false},
      {"two steps echoing the seed", "s", {"s", "s"}, true},
      {"alternating pair twice", "s", {"a", "b", "a", "b"}, false},
      {"alternating pair three times", "s", {"a", "b", "a", "b", "a", "b"}, true},
      {"no sentences", "s", {}, false},
      {"case matters", "s", {"A", "a", "a"}, false},
  };
  std::size_t mismatches = 0;
  for (const auto& c : cases) {
    const bool got = is_repetitive(c.seed, c.sentences);
    if (got != c.repetitive && ++mismatches <= 5)
      ADD_FAILURE() << c.name << ": expected " << c.repetitive << ", got " << got;
    const DropReason r = filter_chain(c.seed, c.sentences);
    if (r != (c.repetitive ? DropReason::Repetition : DropReason::None) && ++mismatches <= 5)
      ADD_FAILURE() << c.name << ": filter_chain gave " << drop_reason_name(r);
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(Filters, WholeChainTakesTheFirstStepVerdict) {
  EXPECT_EQ(filter_chain("s", {"a", "", "b\nc"}), DropReason::Empty);
  EXPECT_EQ(filter_chain("s", {"a", "b\nc", ""}), DropReason::Newline);
  EXPECT_EQ(filter_chain("s", {"a\n", "a\n", "a\n"}), DropReason::Newline);  // newline wins over repetition
}

TEST(Seeds, IdsAreLineIndicesAndBlankLinesAreSkipped) {
  const auto seeds = parse_seeds("\xEF\xBB\xBF" "first\r\n\r\n  second  \n\t\nthird", "s.txt");
  ASSERT_EQ(seeds.size(), 3u);
  EXPECT_EQ(seeds[0].id, 0u);
  EXPECT_EQ(seeds[0].text, "first");
  EXPECT_EQ(seeds[1].id, 2u);
  EXPECT_EQ(seeds[1].text, "second");
  EXPECT_EQ(seeds[2].id, 4u);
  EXPECT_EQ(seeds[2].text, "third");
  EXPECT_TRUE(parse_seeds("", "e").empty());
}

TEST(Seeds, BadLinesNameFileAndLine) {
  struct Case {
    std::string text, where;
  };
  const std::vector<Case> cases = {
      {"ok\nbad \xC3 utf8\n", "s.txt:2"},
      {"ok\n\nname\tlabel\n", "s.txt:3"},
      {"a\rb\n", "s.txt:1"},
      {"ok\nok\nok\n\xED\xA0\x80 surrogate\n", "s.txt:4"},
  };
  for (const auto& c : cases) {
    const Error e = expect_error([&] { parse_seeds(c.text, "s.txt"); });
    EXPECT_EQ(e.code(), ErrorCode::Input) << c.where;
    EXPECT_NE(std::string(e.what()).find(c.where + ":"), std::string::npos) << e.what();
  }
}

TEST(Seeds, ReadFileRecordsNameSizeAndHash) {
  TempDir dir;
  spit(dir / "seeds.txt", "one\ntwo\n");
  const SeedFile f = read_seeds(dir / "seeds.txt");
  EXPECT_EQ(f.name, "seeds.txt");
  EXPECT_EQ(f.size, 8u);
  EXPECT_EQ(f.hash, fnv1a64_hex("one\ntwo\n"));
  EXPECT_EQ(fnv1a64_hex(""), "cbf29ce484222325");  // FNV-1a 64 offset basis
  EXPECT_EQ(fnv1a64_hex("a"), "af63dc4c8601ec8c");  // published FNV-1a test vector
  spit(dir / "blank.txt", "\n  \n");
  EXPECT_EQ(expect_error([&] { read_seeds(dir / "blank.txt"); }).code(), ErrorCode::Input);
  EXPECT_EQ(expect_error([&] { read_seeds(dir / "missing.txt"); }).code(), ErrorCode::Input);
}

TEST(Seeds, ShardParsing) {
  EXPECT_EQ(parse_shard(""), (Shard{0, 1}));
  EXPECT_EQ(parse_shard("2/3"), (Shard{2, 3}));
  EXPECT_EQ(format_shard({1, 4}), "1/4");
  for (const char* bad : {"3/3", "1", "/3", "1/", "a/3", "1/0", "-1/3", "1/3x", "1 /3"}) {
    const Error e = expect_error([&] { parse_shard(bad); });
    EXPECT_EQ(e.code(), ErrorCode::Usage) << bad;
  }
}

TEST(Seeds, LimitThenShard) {
  const auto seeds = parse_seeds("a\nb\n\nc\nd\ne\nf\n", "s");  // ids 0 1 3 4 5 6
  const auto ids = [](const std::vector<Seed>& v) {
    std::vector<std::uint64_t> out;
    for (const auto& s : v) out.push_back(s.id);
    return out;
  };
  EXPECT_EQ(ids(select_seeds(seeds, std::nullopt, {})), (std::vector<std::uint64_t>{0, 1, 3, 4, 5, 6}));
  EXPECT_EQ(ids(select_seeds(seeds, 4, {})), (std::vector<std::uint64_t>{0, 1, 3, 4}));
  EXPECT_EQ(ids(select_seeds(seeds, std::nullopt, {0, 3})), (std::vector<std::uint64_t>{0, 3, 6}));
  EXPECT_EQ(ids(select_seeds(seeds, std::nullopt, {1, 3})), (std::vector<std::uint64_t>{1, 4}));
  EXPECT_EQ(ids(select_seeds(seeds, 4, {0, 3})), (std::vector<std::uint64_t>{0, 3}));
  EXPECT_EQ(ids(select_seeds(seeds, 100, {2, 3})), (std::vector<std::uint64_t>{5}));
  EXPECT_TRUE(select_seeds(seeds, 0, {}).empty());
}

}  // namespace
}  // namespace rankemb::generate::test
