// `rankemb eval`'s library half (eval/report.h) end to end with a real encoder (all-MiniLM-L6-v2
// from the asset cache) on the small fixture data dir tests/fixtures/eval/data: every number in
// the JSON equals a recomputation through evaluate_sts / rank_metrics on the same embeddings
// (loaded independently), every sentence is embedded exactly once per run, the table shows those
// numbers x 100 with two decimals in aligned columns, and task parsing / missing data fail clearly.
#include <unistd.h>

#include "rankemb/eval/report.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "common/test_paths.h"
#include "rankemb/models/embed.h"
#include "rankemb/eval/metrics.h"
#include "rankemb/models/encoder.h"
#include "rankemb/util/error.h"

namespace ev = rankemb::eval;
namespace fs = std::filesystem;
using nlohmann::json;
using rankemb::ErrorCode;

namespace {

fs::path fixture_data() { return rankemb::test::fixtures_dir() / "eval" / "data"; }

rankemb::models::SentenceEncoder& minilm() {
  static auto enc = rankemb::models::load_encoder(rankemb::test::asset("all-MiniLM-L6-v2"));
  return *enc;
}

// Wraps an EmbedFn and remembers every vector it returned, counting how often each text came.
struct Recorder {
  rankemb::EmbedFn inner;
  std::map<std::string, std::vector<float>> seen;
  std::map<std::string, int> calls;
  rankemb::EmbedFn fn() {
    return [this](const std::vector<std::string>& texts) {
      auto out = inner(texts);
      for (std::size_t i = 0; i < texts.size(); ++i) {
        seen[texts[i]] = out[i];
        ++calls[texts[i]];
      }
      return out;
    };
  }
  // Replays the recorded vectors; a text never embedded in the run is a test failure.
  rankemb::EmbedFn replay() const {
    return [this](const std::vector<std::string>& texts) {
      std::vector<std::vector<float>> out;
      for (const auto& t : texts) {
        auto it = seen.find(t);
        if (it == seen.end()) {
          ADD_FAILURE() << "not embedded in the run: " << t;
          out.emplace_back(seen.begin()->second.size(), 0.0f);
        } else {
          out.push_back(it->second);
        }
      }
      return out;
    };
  }
};

// Same value, NaN == null.
void expect_same(const json& got, double want, const std::string& what) {
  if (std::isnan(want)) {
    EXPECT_TRUE(got.is_null()) << what << ": got " << got;
  } else {
    ASSERT_TRUE(got.is_number()) << what << ": got " << got;
    EXPECT_EQ(got.get<double>(), want) << what;
  }
}

fs::path write_rerank_fixture() {
  // One file per process: ctest runs the parameterized cases in parallel processes.
  const fs::path p = fs::temp_directory_path() / ("rankemb_report_test_rerank." + std::to_string(::getpid()) + ".jsonl");
  std::ofstream out(p);
  out << R"({"query": "A girl is styling her hair.", "positive": ["A girl is brushing her hair."], "negative": ["A group of men play soccer on the beach.", "A man is playing a flute."]})" << "\n"
      << R"({"query": "Men play soccer.", "positive": ["A group of men play soccer on the beach.", "Boys are playing football."], "negative": ["A girl is brushing her hair."]})" << "\n"
      << R"({"query": "Only positives here.", "positive": ["Only positives."], "negative": []})" << "\n";
  return p;
}

struct EvalRun {
  ev::EvalReport report;
  Recorder rec;
};

EvalRun run(ev::TextVariant text, const std::string& tasks) {
  EvalRun r;
  rankemb::NullProgress np;
  r.rec.inner = rankemb::models::encoder_embed_fn(minilm(), {.batch = 4}, np);
  r.report = ev::run_eval(ev::parse_tasks(tasks), {.data_dir = fixture_data(), .text = text}, r.rec.fn(), np);
  r.report.model = "all-MiniLM-L6-v2";
  return r;
}

class ReportTest : public ::testing::TestWithParam<ev::TextVariant> {};

TEST_P(ReportTest, JsonMatchesRecomputationOnTheSameEmbeddings) {
  const auto text = GetParam();
  const fs::path rerank_file = write_rerank_fixture();
  EvalRun r = run(text, "sts15,stsb,sickr,dev," + rerank_file.string());
  const json j = ev::report_json(r.report);

  // Each distinct sentence went to the encoder exactly once in the whole run.
  int repeated = 0;
  for (const auto& [t, n] : r.rec.calls)
    if (n != 1) ++repeated;
  EXPECT_EQ(repeated, 0);
  EXPECT_EQ(j["n_embedded"].get<std::size_t>(), r.rec.seen.size());
  EXPECT_EQ(j["embedding_dim"].get<std::size_t>(), 384u);
  EXPECT_EQ(j["text"], std::string(ev::to_string(text)));

  // The recorded vectors are the encoder's (a one-sentence batch, no padding) within 1e-5.
  {
    const auto& [t, v] = *r.rec.seen.begin();
    rankemb::NullProgress np;
    const std::vector<std::string> one = {t};
    const torch::Tensor ref = minilm().encode(one, {}, np).contiguous();
    const float* p = ref.data_ptr<float>();
    double worst = 0;
    for (std::size_t k = 0; k < v.size(); ++k) worst = std::max(worst, std::abs(double(v[k]) - double(p[k])));
    EXPECT_LE(worst, 1e-5) << t;
  }

  // STS and dev: reload the data independently and score the same embeddings.
  const std::vector<ev::StsDataset> sts = {ev::load_sts_year(fixture_data(), 2015, text), ev::load_stsb(fixture_data(), "test", text),
                                           ev::load_sick_r(fixture_data(), "test", text)};
  const auto dev = ev::load_dev_tasks(fixture_data(), text);
  rankemb::NullProgress np;
  const auto want_sts = ev::evaluate_sts(sts, r.rec.replay(), {}, np);
  const auto want_dev = ev::evaluate_sts(dev, r.rec.replay(), {}, np);
  auto check_group = [&](const json& g, const std::vector<ev::StsResult>& want, const std::string& group) {
    ASSERT_EQ(g["tasks"].size(), want.size()) << group;
    for (std::size_t i = 0; i < want.size(); ++i) {
      const json& t = g["tasks"][i];
      const auto& w = want[i];
      const std::string where = group + "/" + w.name;
      EXPECT_EQ(t["name"], w.name);
      EXPECT_EQ(t["split"], w.split);
      EXPECT_EQ(t["n"].get<std::size_t>(), w.all.n) << where;
      expect_same(t["spearman"], w.all.spearman, where + " spearman");
      expect_same(t["pearson"], w.all.pearson, where + " pearson");
      expect_same(t["mean_spearman"], w.mean_spearman, where + " mean_spearman");
      expect_same(t["wmean_pearson"], w.wmean_pearson, where + " wmean_pearson");
      ASSERT_EQ(t["subsets"].size(), w.subsets.size()) << where;
      for (std::size_t s = 0; s < w.subsets.size(); ++s) {
        EXPECT_EQ(t["subsets"][s]["name"], w.subsets[s].first);
        expect_same(t["subsets"][s]["spearman"], w.subsets[s].second.spearman, where + "/" + w.subsets[s].first);
      }
    }
    expect_same(g["mean_spearman"], ev::mean_spearman(want), group + " mean");
  };
  check_group(j["sts"], want_sts, "sts");
  check_group(j["dev"], want_dev, "dev");

  // Reranking: MAP / MRR@10 by hand from the same vectors (query 3 has no negative: not scored).
  const json& rr = j["rerank"]["tasks"][0];
  EXPECT_EQ(rr["n_queries"], 3);
  EXPECT_EQ(rr["n_scored"], 2);
  const auto ds = ev::load_rerank_jsonl(rerank_file);
  double map = 0, mrr = 0;
  for (std::size_t q = 0; q < 2; ++q) {
    const auto& query = ds.queries[q];
    std::vector<double> scores;
    std::vector<bool> rel;
    for (const auto& p : query.positive) scores.push_back(ev::cosine(r.rec.seen.at(query.query), r.rec.seen.at(p))), rel.push_back(true);
    for (const auto& n : query.negative) scores.push_back(ev::cosine(r.rec.seen.at(query.query), r.rec.seen.at(n))), rel.push_back(false);
    const auto m = ev::rank_metrics(scores, rel, 10);
    map += m.average_precision / 2;
    mrr += m.reciprocal_rank / 2;
  }
  EXPECT_NEAR(rr["map"].get<double>(), map, 1e-12);
  EXPECT_NEAR(rr["mrr_at_10"].get<double>(), mrr, 1e-12);
  // Sanity: the obvious paraphrase ranks first for the first two queries with a real encoder.
  EXPECT_EQ(rr["mrr_at_10"].get<double>(), 1.0);
  fs::remove(rerank_file);
}

INSTANTIATE_TEST_SUITE_P(Text, ReportTest, ::testing::Values(ev::TextVariant::SentEval, ev::TextVariant::Raw),
                         [](const auto& info) { return std::string(ev::to_string(info.param)); });

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The lines of the section whose title starts with `title`, up to the next blank line.
std::vector<std::string> section(const std::string& table, const std::string& title) {
  std::vector<std::string> out;
  bool in = false;
  for (const auto& l : lines_of(table)) {
    if (!in && l.rfind(title, 0) == 0) {
      in = true;
      continue;
    }
    if (in && l.empty()) break;
    if (in) out.push_back(l);
  }
  return out;
}

TEST(ReportTable, AlignedColumnsWithSpearmanTimes100) {
  EvalRun r = run(ev::TextVariant::SentEval, "sts15,stsb,sickr,dev");
  const std::string table = ev::format_table(r.report);
  const auto sts = section(table, "STS (");
  // Header, 3 tasks, mean.
  ASSERT_EQ(sts.size(), 5u) << table;
  // Task rows end where the header ends (right-aligned columns); no line has trailing blanks.
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(sts[i].size(), sts[0].size()) << "misaligned: [" << sts[i] << "]\n" << table;
  for (const auto& l : lines_of(table)) EXPECT_TRUE(l.empty() || l.back() != ' ') << "[" << l << "]";
  const std::vector<std::string> names = {"STS15", "STS-B", "SICK-R"};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& res = r.report.sts[i];
    std::istringstream row(sts[i + 1]);
    std::string name, sp, pe, n;
    row >> name >> sp >> pe >> n;
    EXPECT_EQ(name, names[i]);
    EXPECT_EQ(sp, fmt::format("{:.2f}", 100 * res.all.spearman));
    EXPECT_EQ(pe, fmt::format("{:.2f}", 100 * res.all.pearson));
    EXPECT_EQ(n, std::to_string(res.all.n));
  }
  EXPECT_EQ(sts[4].rfind("mean (3)", 0), 0u) << sts[4];
  EXPECT_NE(sts[4].find(fmt::format("{:.2f}", 100 * ev::mean_spearman(r.report.sts))), std::string::npos) << sts[4];
  const auto dev = section(table, "Dev (");
  ASSERT_EQ(dev.size(), 4u) << table;
  EXPECT_EQ(dev[1].rfind("STS-B dev ", 0), 0u) << dev[1];
  EXPECT_EQ(dev[2].rfind("SICK-R dev ", 0), 0u) << dev[2];
  EXPECT_NE(table.find("\ntime: sts "), std::string::npos) << table;

  // Side by side with itself: every delta is +0.00.
  const std::string cmp = ev::format_comparison(r.report, r.report);
  const auto rows = section(cmp, "STS (");
  ASSERT_EQ(rows.size(), 5u) << cmp;
  for (std::size_t i = 1; i < rows.size(); ++i) EXPECT_EQ(rows[i].substr(rows[i].size() - 5), "+0.00") << rows[i];
  for (const auto& l : rows) EXPECT_EQ(l.size(), rows[0].size()) << cmp;
}

TEST(ReportTasks, ParsesGroupsAndNames) {
  auto all = ev::parse_tasks("sts");
  EXPECT_EQ(all.sts, (std::vector<std::string>{"sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr"}));
  EXPECT_FALSE(all.dev);
  auto some = ev::parse_tasks(" SICKR, stsb ,sts12,dev,stsb");
  EXPECT_EQ(some.sts, (std::vector<std::string>{"sts12", "stsb", "sickr"}));
  EXPECT_TRUE(some.dev);
  auto rr = ev::parse_tasks("rerank,trecqa,Data/My.jsonl");
  EXPECT_EQ(rr.rerank, (std::vector<std::string>{"trecqa", "Data/My.jsonl"}));
  EXPECT_TRUE(rr.sts.empty());
  auto tr = ev::parse_tasks("MRPC,transfer");
  EXPECT_EQ(tr.transfer, (std::vector<std::string>{"mr", "cr", "subj", "mpqa", "sst2", "trec", "mrpc"}));
  for (const char* bad : {"", " , ", "sts17", "mrpc2", "qqp"}) {
    try {
      ev::parse_tasks(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const rankemb::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Usage) << bad;
    }
  }
}

TEST(ReportTasks, MissingDataFileNamesTheFileBeforeEncoding) {
  int calls = 0;
  rankemb::EmbedFn counting = [&](const std::vector<std::string>& t) {
    ++calls;
    return std::vector<std::vector<float>>(t.size(), std::vector<float>(4, 1.0f));
  };
  rankemb::NullProgress np;
  try {
    // The fixture dir has STS15 only; stsb would load fine but must not be encoded first.
    ev::run_eval(ev::parse_tasks("stsb,sts12"), {.data_dir = fixture_data()}, counting, np);
    ADD_FAILURE() << "no error for the missing STS12 files";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Input);
    EXPECT_NE(std::string(e.what()).find("STS12"), std::string::npos) << e.what();
  }
  EXPECT_EQ(calls, 0);
}

}  // namespace
