// STS loaders: SentEval's reading rules on hand-made fixtures (tests/fixtures/eval/data), error
// and skip reports on broken files written to a temp dir, and row counts of the real data equal to
// the numbers in each PROVENANCE.md.
#include "rankemb/eval/datasets.h"

#include <gtest/gtest.h>

#include <fstream>
#include <algorithm>
#include <map>
#include <tuple>

#include "common/test_paths.h"
#include "rankemb/util/error.h"

namespace ev = rankemb::eval;
namespace fs = std::filesystem;
using rankemb::ErrorCode;
using ev::TextVariant;

namespace {

fs::path fixture_data() { return rankemb::test::fixtures_dir() / "eval" / "data"; }

const ev::StsSubset& subset(const ev::StsDataset& ds, const std::string& name) {
  for (const auto& s : ds.subsets)
    if (s.name == name) return s;
  throw std::runtime_error("no subset " + name);
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// A scratch data dir per test, removed afterwards.
class TempData : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rankemb_eval_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // A valid SentEval STS13 folder; tests then break one file.
  void senteval_sts13() {
    for (const char* s : {"FNWN", "headlines", "OnWN"}) {
      write(sts13() / (std::string("STS.input.") + s + ".txt"), "a b\tc d\ne f\tg h\n");
      write(sts13() / (std::string("STS.gs.") + s + ".txt"), "1\n2\n");
    }
  }
  fs::path sts13() const { return dir_ / "senteval" / "STS" / "STS13-en-test"; }
  fs::path dir_;
};

// `f` throws Error(Input) whose message holds every needle.
template <typename F>
void expect_input_error(F f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Input) << e.what();
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "want \"" << n << "\" in: " << e.what();
  }
}

}  // namespace

TEST(EvalDatasets, PythonSplitting) {
  EXPECT_EQ(ev::split_join_whitespace("  a\t b\u00a0c\x1f" "d\u2003e  "), "a b c d e");
  EXPECT_EQ(ev::split_join_whitespace("zero\u200bwidth"), "zero\u200bwidth");  // U+200B is not whitespace in Python
  EXPECT_EQ(ev::split_join_whitespace(" \t "), "");
  const auto lines = ev::python_splitlines("a\r\nb\rc\x1c" "d\u2028e\n\nf");
  EXPECT_EQ(lines, (std::vector<std::string_view>{"a", "b", "c", "d", "e", "", "f"}));
  EXPECT_EQ(ev::python_splitlines("x\n").size(), 1u);
  EXPECT_EQ(ev::python_splitlines("x\x1fy").size(), 1u);  // U+001F is space, not a line break
}

TEST(EvalDatasets, DefaultDataDirAndVariants) {
  EXPECT_FALSE(ev::default_data_dir().empty());
  EXPECT_EQ(ev::parse_text_variant("raw"), TextVariant::Raw);
  EXPECT_EQ(ev::to_string(ev::parse_text_variant("senteval")), "senteval");
  try {
    ev::parse_text_variant("moses");
    ADD_FAILURE();
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Usage);
  }
}

TEST(EvalDatasets, SentEvalStsFixture) {
  const auto ds = ev::load_sts_year(fixture_data(), 2015, TextVariant::SentEval);
  EXPECT_EQ(ds.name, "STS15");
  ASSERT_EQ(ds.subsets.size(), 5u);
  EXPECT_EQ(ds.subsets[0].name, "answers-forums");
  EXPECT_EQ(ds.n_pairs(), 22u);
  EXPECT_EQ(ds.n_unscored, 3u);  // the empty gold lines
  EXPECT_TRUE(ds.skipped.empty());
  const auto& forums = subset(ds, "answers-forums");
  ASSERT_EQ(forums.pairs.size(), 4u);
  EXPECT_EQ(forums.pairs[2].sentence1, "two spaces and nbsp .");  // split on U+00A0 too, joined by ' '
  EXPECT_EQ(forums.pairs[2].score, 4.8);
  EXPECT_NE(forums.pairs[2].where.find("STS.input.answers-forums.txt:4"), std::string::npos) << forums.pairs[2].where;
  const auto& students = subset(ds, "answers-students");  // CRLF file
  EXPECT_EQ(students.pairs[0].sentence2, "the bulb is in a closed path");
  EXPECT_EQ(students.pairs[3].sentence1, "");  // an empty sentence stays an empty text
  EXPECT_EQ(subset(ds, "belief").pairs[1].sentence2, "second sentence .");  // extra tab fields ignored
  const auto& head = subset(ds, "headlines");
  EXPECT_EQ(head.pairs[0].sentence1, "leading and trailing spaces");
  EXPECT_EQ(head.pairs[1].sentence1, "file separator splits in python");  // U+001F
  EXPECT_EQ(head.pairs[2].sentence1, "tabs are em spaces");             // U+2003
}

TEST(EvalDatasets, RawStsFixtureReportsBadScores) {
  const auto ds = ev::load_sts_year(fixture_data(), 2015, TextVariant::Raw);
  EXPECT_EQ(ds.n_pairs(), 15u);
  ASSERT_EQ(ds.skipped.size(), 2u);
  EXPECT_NE(ds.skipped[0].where.find("sts15.tsv:4"), std::string::npos) << ds.skipped[0].where;
  EXPECT_NE(ds.skipped[0].reason.find("not a number"), std::string::npos) << ds.skipped[0].reason;
  EXPECT_NE(ds.skipped[1].where.find("sts15.tsv:10"), std::string::npos) << ds.skipped[1].where;
  EXPECT_NE(ds.skipped[1].reason.find("outside [0, 5]"), std::string::npos) << ds.skipped[1].reason;
  EXPECT_EQ(subset(ds, "answers-forums").pairs[2].sentence2, "Two  spaces\u00a0and nbsp.");  // raw text untouched
}

TEST(EvalDatasets, StsbAndSickFixtures) {
  const auto se = ev::load_stsb(fixture_data(), "test", TextVariant::SentEval);
  ASSERT_EQ(se.n_pairs(), 4u);
  EXPECT_EQ(se.subsets[0].pairs[1].sentence1, "a group of men play soccer on the beach .");  // stripped line
  EXPECT_EQ(se.subsets[0].pairs[2].sentence2, "a woman measures another woman 's ankle .");  // 8th column ignored
  const auto raw = ev::load_stsb(fixture_data(), "test", TextVariant::Raw);
  EXPECT_EQ(raw.n_pairs(), 4u);
  ASSERT_EQ(raw.skipped.size(), 1u);
  EXPECT_NE(raw.skipped[0].where.find("stsb-test.tsv:6"), std::string::npos);
  EXPECT_EQ(ev::load_stsb(fixture_data(), "dev", TextVariant::SentEval).n_pairs(), 4u);

  const auto sick_se = ev::load_sick_r(fixture_data(), "test", TextVariant::SentEval);
  ASSERT_EQ(sick_se.n_pairs(), 4u);
  EXPECT_EQ(sick_se.subsets[0].pairs[2].sentence1, "Nobody is riding the bicycle");
  EXPECT_EQ(sick_se.subsets[0].pairs[0].score, 4.5);
  const auto sick_raw = ev::load_sick_r(fixture_data(), "test", TextVariant::Raw);
  EXPECT_EQ(sick_raw.subsets[0].pairs[2].sentence1, "Nobody is  riding the bicycle");
  ASSERT_EQ(sick_raw.skipped.size(), 1u);
  EXPECT_NE(sick_raw.skipped[0].reason.find("outside [1, 5]"), std::string::npos) << sick_raw.skipped[0].reason;
  EXPECT_EQ(ev::load_sick_r(fixture_data(), "dev", TextVariant::Raw).n_pairs(), 3u);
}

TEST_F(TempData, MissingFileNamesIt) {
  expect_input_error([&] { ev::load_sts_year(dir_, 2013, TextVariant::SentEval); }, {"STS.input.FNWN.txt"});
  expect_input_error([&] { ev::load_stsb(dir_, "dev", TextVariant::Raw); }, {"stsb-dev.tsv"});
  expect_input_error([&] { ev::load_sick_r(dir_, "test", TextVariant::SentEval); }, {"SICK_test_annotated.txt"});
}

TEST_F(TempData, SentEvalMalformedFiles) {
  senteval_sts13();
  EXPECT_EQ(ev::load_sts_year(dir_, 2013, TextVariant::SentEval).n_pairs(), 6u);
  write(sts13() / "STS.gs.OnWN.txt", "1\n2\n3\n");
  expect_input_error([&] { ev::load_sts_year(dir_, 2013, TextVariant::SentEval); }, {"STS.gs.OnWN.txt", "3 lines", "has 2"});
  write(sts13() / "STS.gs.OnWN.txt", "1\n2\n");
  write(sts13() / "STS.input.headlines.txt", "a b\tc d\nno tab here\n");
  expect_input_error([&] { ev::load_sts_year(dir_, 2013, TextVariant::SentEval); }, {"STS.input.headlines.txt:2", "1 field"});
  write(sts13() / "STS.input.headlines.txt", "a b\tc d\n\xff\tx\n");
  expect_input_error([&] { ev::load_sts_year(dir_, 2013, TextVariant::SentEval); }, {"STS.input.headlines.txt", "UTF-8"});
}

TEST_F(TempData, SentEvalBadGoldIsSkippedAndReported) {
  senteval_sts13();
  write(sts13() / "STS.gs.FNWN.txt", "x1\n6\n");
  const auto ds = ev::load_sts_year(dir_, 2013, TextVariant::SentEval);
  EXPECT_EQ(ds.n_pairs(), 4u);
  ASSERT_EQ(ds.skipped.size(), 2u);
  EXPECT_NE(ds.skipped[0].where.find("STS.gs.FNWN.txt:1"), std::string::npos) << ds.skipped[0].where;
  EXPECT_NE(ds.skipped[1].where.find("STS.gs.FNWN.txt:2"), std::string::npos) << ds.skipped[1].where;
}

TEST_F(TempData, RawMalformedFiles) {
  const fs::path tsv = dir_ / "sts13" / "sts13.tsv";
  write(tsv, "subset\tscore\tsentence\n");
  expect_input_error([&] { ev::load_sts_year(dir_, 2013, TextVariant::Raw); }, {"sts13.tsv:1", "header"});
  write(tsv, "subset\tscore\tsentence1\tsentence2\nFNWN\t1\ta\tb\nFNWN\t2\tonly three\n");
  expect_input_error([&] { ev::load_sts_year(dir_, 2013, TextVariant::Raw); }, {"sts13.tsv:3", "4 tab-separated fields"});
  write(tsv, "subset\tscore\tsentence1\tsentence2\nSMT\t1\ta\tb\n");
  expect_input_error([&] { ev::load_sts_year(dir_, 2013, TextVariant::Raw); }, {"sts13.tsv:2", "unknown subset \"SMT\""});
  write(dir_ / "senteval" / "STS" / "STSBenchmark" / "sts-test.csv", "g\tf\ty\t1\t2.0\ta\tb\ng\tf\ty\t2\t3.0\ta only\n");
  expect_input_error([&] { ev::load_stsb(dir_, "test", TextVariant::SentEval); }, {"sts-test.csv:2", "at least 7"});
  try {
    ev::load_stsb(dir_, "validation", TextVariant::SentEval);
    ADD_FAILURE();
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Usage);
  }
}

// Row counts of the real data equal the PROVENANCE.md tables, in both text variants, and the two
// variants carry the same gold scores in the same order.
TEST(EvalDatasets, RealDataCounts) {
  const fs::path data = rankemb::test::data_dir();
  ASSERT_TRUE(fs::exists(data / "senteval")) << data << " has no senteval/; set RANKEMB_DATA_DIR";
  const std::map<int, std::vector<std::size_t>> per_subset = {
      {2012, {750, 750, 459, 750, 399}}, {2013, {189, 750, 561}}, {2014, {450, 300, 750, 750, 750, 750}},
      {2015, {375, 750, 375, 750, 750}}, {2016, {254, 249, 230, 244, 209}}};
  const std::map<int, std::size_t> unscored = {{2012, 0}, {2013, 0}, {2014, 0}, {2015, 5500}, {2016, 7997}};
  for (const auto& [year, counts] : per_subset) {
    const auto se = ev::load_sts_year(data, year, TextVariant::SentEval);
    const auto raw = ev::load_sts_year(data, year, TextVariant::Raw);
    EXPECT_TRUE(se.skipped.empty() && raw.skipped.empty()) << year;
    EXPECT_EQ(se.n_unscored, unscored.at(year)) << year;
    ASSERT_EQ(se.subsets.size(), counts.size());
    ASSERT_EQ(raw.subsets.size(), counts.size());
    for (std::size_t i = 0; i < counts.size(); ++i) {
      EXPECT_EQ(se.subsets[i].pairs.size(), counts[i]) << year << " " << se.subsets[i].name;
      ASSERT_EQ(raw.subsets[i].pairs.size(), counts[i]) << year << " " << raw.subsets[i].name;
      int diff = 0;
      for (std::size_t k = 0; k < counts[i]; ++k) diff += se.subsets[i].pairs[k].score != raw.subsets[i].pairs[k].score;
      EXPECT_EQ(diff, 0) << year << " " << se.subsets[i].name << ": gold order differs between variants";
    }
  }
  for (auto v : {TextVariant::SentEval, TextVariant::Raw}) {
    EXPECT_EQ(ev::load_stsb(data, "train", v).n_pairs(), 5749u);
    EXPECT_EQ(ev::load_stsb(data, "dev", v).n_pairs(), 1500u);
    EXPECT_EQ(ev::load_stsb(data, "test", v).n_pairs(), 1379u);
    EXPECT_EQ(ev::load_sick_r(data, "train", v).n_pairs(), 4500u);
    EXPECT_EQ(ev::load_sick_r(data, "dev", v).n_pairs(), 500u);
    const auto sick = ev::load_sick_r(data, "test", v);
    EXPECT_EQ(sick.n_pairs(), 4927u);
    EXPECT_TRUE(sick.skipped.empty());
  }
  // SentEval's text is lower-cased and tokenized ("woman 's"), the raw text is not.
  EXPECT_EQ(ev::load_stsb(data, "test", TextVariant::SentEval).subsets[0].pairs[0].sentence1, "a girl is styling her hair .");
  EXPECT_EQ(ev::load_stsb(data, "test", TextVariant::Raw).subsets[0].pairs[0].sentence1, "A girl is styling her hair.");
}

TEST(EvalDatasets, RealTransferCounts) {
  const fs::path data = rankemb::test::data_dir();
  struct Want {
    const char* task;
    std::size_t train, dev, test, positives;
  };
  // PROVENANCE.md line counts (empty lines of CR/MPQA kept, as SentEval keeps them).
  const std::vector<Want> wants = {{"MR", 10662, 0, 0, 5331},   {"CR", 3775, 0, 0, 2407},  {"SUBJ", 10000, 0, 0, 5000},
                                   {"MPQA", 10606, 0, 0, 3312}, {"SST2", 6920, 872, 1821, 0}, {"TREC", 5452, 0, 500, 0},
                                   {"MRPC", 4076, 0, 1725, 0}};
  ASSERT_EQ(ev::transfer_task_names().size(), wants.size());
  for (const auto& w : wants) {
    const auto ds = ev::load_transfer(data, w.task);
    EXPECT_EQ(ds.train.size(), w.train) << w.task;
    EXPECT_EQ(ds.train.text.size(), w.train) << w.task;
    EXPECT_EQ(ds.dev.size(), w.dev) << w.task;
    EXPECT_EQ(ds.test.size(), w.test) << w.task;
    EXPECT_EQ(ds.cross_validation, w.test == 0) << w.task;
    if (w.positives > 0) {
      EXPECT_EQ(std::count(ds.train.label.begin(), ds.train.label.end(), 1), static_cast<long>(w.positives)) << w.task;
    }
  }
  const auto cr = ev::load_transfer(data, "CR");
  EXPECT_EQ(std::count(cr.train.text.begin(), cr.train.text.end(), ""), 4);  // 2 + 2 empty lines
  const auto trec = ev::load_transfer(data, "TREC");
  EXPECT_EQ(trec.classes[static_cast<std::size_t>(trec.test.label[0])], "NUM");
  EXPECT_EQ(trec.test.text[0], "How far is it from Denver to Aspen ?");
  const auto mrpc = ev::load_transfer(data, "MRPC");
  EXPECT_EQ(mrpc.test.text2.size(), 1725u);
  EXPECT_EQ(mrpc.test.label[0], 1);
  const auto sst = ev::load_transfer(data, "SST2");
  EXPECT_EQ(sst.dev.label[0], 0);
  EXPECT_EQ(sst.dev.text[0], "one long string of cliches .");
}

TEST(EvalDatasets, RealTrecQaCounts) {
  const fs::path data = rankemb::test::data_dir();
  const std::vector<std::tuple<const char*, std::size_t, std::size_t>> wants = {{"train", 93, 78}, {"dev", 81, 65}, {"test", 95, 68}};
  for (const auto& [split, n, usable] : wants) {
    const auto ds = ev::load_trecqa(data, split);
    EXPECT_EQ(ds.queries.size(), n) << split;
    std::size_t u = 0;
    for (const auto& q : ds.queries) u += !q.positive.empty() && !q.negative.empty();
    EXPECT_EQ(u, usable) << split;
  }
}

TEST_F(TempData, TransferAndRerankErrors) {
  write(dir_ / "transfer" / "trec" / "TREC.train", "NUM:dist How far ?\nXYZ:foo What ?\n");
  write(dir_ / "transfer" / "trec" / "TREC.test", "NUM:dist How far ?\n");
  expect_input_error([&] { ev::load_transfer(dir_, "TREC"); }, {"TREC.train:2", "XYZ"});
  write(dir_ / "transfer" / "sst2" / "stsa.binary.train", "1 good .\n2 what .\n");
  expect_input_error([&] { ev::load_transfer(dir_, "SST2"); }, {"stsa.binary.train:2", "label \"2\""});
  write(dir_ / "transfer" / "mrpc" / "msr_paraphrase_train.txt", "h\th\th\th\th\n1\t1\t2\tonly four\n");
  expect_input_error([&] { ev::load_transfer(dir_, "MRPC"); }, {"msr_paraphrase_train.txt:2", "5 tab-separated"});
  expect_input_error([&] { ev::load_transfer(dir_, "MR"); }, {"rt-polarity.pos"});
  try {
    ev::load_transfer(dir_, "SST5");
    ADD_FAILURE();
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Usage);
  }
  const fs::path jl = dir_ / "q.jsonl";
  write(jl, "{\"query\": \"q\", \"positive\": [\"a\"], \"negative\": [\"b\", \"c\"]}\n\n{\"query\": \"q2\", \"positive\": [], \"negative\": []}\n");
  const auto ok = ev::load_rerank_jsonl(jl);
  ASSERT_EQ(ok.queries.size(), 2u);
  EXPECT_EQ(ok.queries[0].negative.size(), 2u);
  EXPECT_NE(ok.queries[1].where.find("q.jsonl:3"), std::string::npos);
  write(jl, "{\"query\": \"q\", \"positive\": [\"a\"], \"negative\": []}\n{\"query\": \"q\", \"positive\": [\"a\"]\n");
  expect_input_error([&] { ev::load_rerank_jsonl(jl); }, {"q.jsonl:2", "bad JSON"});
  write(jl, "{\"query\": \"q\", \"positive\": [1], \"negative\": []}\n");
  expect_input_error([&] { ev::load_rerank_jsonl(jl); }, {"q.jsonl:1", "\"positive\""});
  write(jl, "{\"positive\": [], \"negative\": []}\n");
  expect_input_error([&] { ev::load_rerank_jsonl(jl); }, {"q.jsonl:1", "\"query\""});
}
