// The stage-2 training loop (src/rankemb/train/trainer.h) end to end on all-MiniLM-L6-v2 and six
// hand-written chains (tests/fixtures/train/tiny_chains.jsonl), with the dev set taken from the
// tiny data dir of tests/fixtures/eval/data: the loss goes down, the exported best model reloads
// with the in-memory student's embeddings, a run stopped and resumed ends with the same weights
// as an uninterrupted one, bfloat16 autocast trains, and misuse of --resume is refused.
#include "rankemb/train/trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace {

namespace fs = std::filesystem;
namespace rt = rankemb::train;
using rankemb::ErrorCode;

using rankemb::test::TempDir;

std::vector<rankemb::chains::Chain> tiny_chains() {
  return rankemb::chains::read_chains(rankemb::test::fixtures_dir() / "train" / "tiny_chains.jsonl", {.strict = true}).chains;
}

rt::TrainOptions base_options(const fs::path& out) {
  rt::TrainOptions o;
  o.student = rankemb::test::asset("all-MiniLM-L6-v2");
  o.output_dir = out;
  o.data_dir = rankemb::test::fixtures_dir() / "eval" / "data";
  o.lr = 1e-4;  // large enough that a few steps visibly move the weights
  o.seed = 2024;
  return o;
}

std::vector<nlohmann::json> read_metrics(const fs::path& run, const std::string& type) {
  std::istringstream in(rankemb::io::read_file(run / "metrics.jsonl"));
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (j.at("type") == type) out.push_back(j);
  }
  return out;
}

// Largest absolute difference between two students' parameters (same architecture).
double max_param_diff(rankemb::models::SentenceEncoder& a, rankemb::models::SentenceEncoder& b) {
  auto pa = a.network().named_parameters(true);
  auto pb = b.network().named_parameters(true);
  EXPECT_EQ(pa.size(), pb.size());
  double worst = 0;
  for (const auto& p : pa) {
    const torch::Tensor* other = pb.find(p.key());
    if (!other) {
      ADD_FAILURE() << "parameter " << p.key() << " missing";
      continue;
    }
    worst = std::max(worst, (p.value() - *other).abs().max().item<double>());
  }
  return worst;
}

const std::vector<std::string> kProbe = {"A man is playing a guitar.", "A dog runs in the park.",
                                         "the kids are playing outdoors", "Rain fell all day."};

TEST(LinearSchedule, MatchesTransformersLinearWithWarmup) {
  EXPECT_DOUBLE_EQ(rt::linear_schedule_lr(1.0, 0, 10, 0), 1.0);
  EXPECT_DOUBLE_EQ(rt::linear_schedule_lr(1.0, 5, 10, 0), 0.5);
  EXPECT_DOUBLE_EQ(rt::linear_schedule_lr(1.0, 9, 10, 0), 0.1);
  EXPECT_DOUBLE_EQ(rt::linear_schedule_lr(1.0, 10, 10, 0), 0.0);
  EXPECT_DOUBLE_EQ(rt::linear_schedule_lr(2.0, 0, 10, 4), 0.0);
  EXPECT_DOUBLE_EQ(rt::linear_schedule_lr(2.0, 2, 10, 4), 1.0);
  EXPECT_DOUBLE_EQ(rt::linear_schedule_lr(2.0, 4, 10, 4), 2.0);
  EXPECT_DOUBLE_EQ(rt::linear_schedule_lr(2.0, 7, 10, 4), 1.0);
}

TEST(Trainer, LossDecreasesAndExportReloadsIdentically) {
  TempDir dir("decrease");
  rt::TrainOptions o = base_options(dir.path());
  o.epochs = 3;         // 18 steps over the six chains
  o.eval_steps = 1000;  // evaluate at the last step only, so best/ is the final student
  auto t0 = std::chrono::steady_clock::now();
  rt::Trainer trainer(tiny_chains(), o);
  rankemb::NullProgress quiet;
  rt::TrainResult r = trainer.run(quiet);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "18 steps + 1 eval: %.2fs (loop %.2fs)\n", secs, r.seconds);

  ASSERT_TRUE(r.finished);
  ASSERT_EQ(r.total_steps, 18);
  ASSERT_EQ(r.steps.size(), 18u);
  auto mean = [&](std::size_t from, std::size_t n) {
    double s = 0;
    for (std::size_t i = from; i < from + n; ++i) s += r.steps[i].loss;
    return s / static_cast<double>(n);
  };
  double first = mean(0, 6), last = mean(12, 6);
  std::fprintf(stderr, "mean loss: first epoch %.4f, last epoch %.4f\n", first, last);
  EXPECT_LT(last, first * 0.95) << "loss did not decrease: first epoch " << first << ", last " << last;
  for (const auto& s : r.steps) {
    EXPECT_TRUE(std::isfinite(s.loss) && std::isfinite(s.grad_norm)) << "step " << s.step;
    EXPECT_LE(s.lr, o.lr);
  }
  EXPECT_DOUBLE_EQ(r.steps.front().lr, o.lr);  // no warm-up: the first step has the full rate

  // Logs: one line per step and per evaluation, and the curve.
  auto steps = read_metrics(dir.path(), "step");
  auto evals = read_metrics(dir.path(), "eval");
  ASSERT_EQ(steps.size(), 18u);
  EXPECT_EQ(steps.back().at("step"), 18);
  for (const char* key : {"loss", "lr", "grad_norm", "seconds"}) EXPECT_TRUE(steps.front().contains(key)) << key;
  ASSERT_EQ(evals.size(), 1u);
  EXPECT_TRUE(evals[0].at("best").get<bool>());
  EXPECT_EQ(evals[0].at("tasks").size(), 2u);
  ASSERT_TRUE(r.best_score.has_value());
  EXPECT_EQ(r.best_step, 18);
  EXPECT_TRUE(fs::exists(dir.path() / "curve.svg"));
  EXPECT_TRUE(fs::exists(dir.path() / "checkpoint" / "state.json"));

  // The export is a loadable sentence-transformers directory giving the student's embeddings.
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json"})
    EXPECT_TRUE(fs::exists(dir.path() / "best" / f)) << f;
  auto reloaded = rankemb::models::load_encoder(dir.path() / "best");
  torch::Tensor want = trainer.student().encode(kProbe, {}, quiet);
  torch::Tensor got = reloaded->encode(kProbe, {}, quiet);
  ASSERT_EQ(want.sizes(), got.sizes());
  EXPECT_LE((want - got).abs().max().item<double>(), 1e-6);
  // ... and training changed the model.
  auto original = rankemb::models::load_encoder(o.student);
  EXPECT_GT((original->encode(kProbe, {}, quiet) - got).abs().max().item<double>(), 1e-4);
}

TEST(Trainer, ResumeEndsLikeAnUninterruptedRun) {
  TempDir straight_dir("straight"), resumed_dir("resumed");
  rankemb::NullProgress quiet;
  auto options = [&](const fs::path& out) {
    rt::TrainOptions o = base_options(out);
    o.max_steps = 6;
    o.eval_steps = 2;  // evaluations and best-model saves on both sides of the interruption
    o.checkpoint_steps = 3;
    return o;
  };

  rt::Trainer straight(tiny_chains(), options(straight_dir.path()));
  rt::TrainResult a = straight.run(quiet);
  ASSERT_TRUE(a.finished);

  {
    rt::TrainOptions o = options(resumed_dir.path());
    o.stop_after = 3;
    rt::Trainer first(tiny_chains(), o);
    rt::TrainResult r = first.run(quiet);
    EXPECT_FALSE(r.finished);
    EXPECT_EQ(r.steps_done, 3);
    EXPECT_FALSE(fs::exists(resumed_dir.path() / "curve.svg"));
  }
  rt::TrainOptions o = options(resumed_dir.path());
  o.resume = true;
  rt::Trainer second(tiny_chains(), o);
  rt::TrainResult b = second.run(quiet);
  ASSERT_TRUE(b.finished);
  EXPECT_EQ(b.start_step, 3);
  ASSERT_EQ(b.steps.size(), 3u);

  double diff = max_param_diff(straight.student(), second.student());
  std::fprintf(stderr, "max |weight difference| straight vs resumed: %g\n", diff);
  EXPECT_LE(diff, 1e-6);
  auto original = rankemb::models::load_encoder(base_options("").student);
  EXPECT_GT(max_param_diff(straight.student(), *original), 1e-5) << "training did not move the weights";

  // Same losses step by step (the resumed log holds the first invocation's three steps too).
  auto la = read_metrics(straight_dir.path(), "step"), lb = read_metrics(resumed_dir.path(), "step");
  ASSERT_EQ(la.size(), 6u);
  ASSERT_EQ(lb.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(la[i].at("step"), lb[i].at("step"));
    EXPECT_NEAR(la[i].at("loss").get<double>(), lb[i].at("loss").get<double>(), 1e-6) << "step " << i + 1;
    EXPECT_NEAR(la[i].at("lr").get<double>(), lb[i].at("lr").get<double>(), 1e-15) << "step " << i + 1;
  }
  ASSERT_TRUE(a.best_score && b.best_score);
  EXPECT_NEAR(*a.best_score, *b.best_score, 1e-6);
  EXPECT_EQ(a.best_step, b.best_step);
  EXPECT_EQ(read_metrics(straight_dir.path(), "eval").size(), 3u);
  EXPECT_EQ(read_metrics(resumed_dir.path(), "eval").size(), 3u);
}

TEST(Trainer, Bfloat16AutocastTrains) {
  TempDir dir("bf16");
  rt::TrainOptions o = base_options(dir.path());
  o.max_steps = 3;
  o.evaluate = false;
  o.dtype = rankemb::Dtype::BFloat16;
  rt::Trainer trainer(tiny_chains(), o);
  rankemb::NullProgress quiet;
  rt::TrainResult r = trainer.run(quiet);
  ASSERT_EQ(r.steps.size(), 3u);
  for (const auto& s : r.steps) EXPECT_TRUE(std::isfinite(s.loss) && s.loss > 0) << "step " << s.step;
  // Master weights stay float32 and the export is the final model.
  EXPECT_EQ(trainer.student().dtype(), rankemb::Dtype::Float32);
  EXPECT_TRUE(fs::exists(dir.path() / "best" / "model.safetensors"));
}

TEST(Trainer, RefusesMisusedRunDirectories) {
  TempDir dir("misuse");
  rankemb::NullProgress quiet;
  rt::TrainOptions o = base_options(dir.path());
  o.max_steps = 1;
  o.evaluate = false;
  {
    // A run killed before its first checkpoint (here: a directory with only an empty metrics
    // file) resumes by starting again, and ends where a fresh run ends.
    TempDir fresh_dir("misuse_fresh");
    rt::TrainOptions f = base_options(fresh_dir.path());
    f.max_steps = 1;
    f.evaluate = false;
    rt::Trainer(tiny_chains(), f).run(quiet);
    fs::create_directories(dir.path());
    std::ofstream(dir.path() / "metrics.jsonl").put('\n');
    rt::TrainOptions r = o;
    r.resume = true;
    rt::Trainer(tiny_chains(), r).run(quiet);
    EXPECT_EQ(rankemb::io::read_file(dir.path() / "best" / "model.safetensors"),
              rankemb::io::read_file(fresh_dir.path() / "best" / "model.safetensors"));
  }
  {
    rt::Trainer t(tiny_chains(), o);  // a fresh run over an existing one
    try {
      t.run(quiet);
      ADD_FAILURE() << "overwriting a run was accepted";
    } catch (const rankemb::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Usage);
    }
  }
  {
    rt::TrainOptions r = o;
    r.resume = true;
    r.lr = 2e-4;
    rt::Trainer t(tiny_chains(), r);
    try {
      t.run(quiet);
      ADD_FAILURE() << "resuming with another learning rate was accepted";
    } catch (const rankemb::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Usage);
      EXPECT_NE(std::string(e.what()).find("lr"), std::string::npos) << e.what();
    }
  }
  rt::TrainOptions bad = o;
  bad.batch = 0;
  EXPECT_THROW(rt::Trainer(tiny_chains(), bad), rankemb::Error);
  EXPECT_THROW(rt::Trainer({}, o), rankemb::Error);
}

}  // namespace
