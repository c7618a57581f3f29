// The method end to end at toy size (tiny BERT student, 4 lexical chains from the golden seeds on
// the checked-in GloVe subset, 3 training steps, STS-B fixture): every stage runs and writes what
// pipeline.h promises, the numbers in results.json are the ones an independent evaluation of the
// same models gives, a second run resumes and does nothing, a rerun with other settings is
// refused, and a stage left "started" by a killed run is the only one redone.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/expect_error.h"
#include "common/temp_dir.h"
#include "common/test_paths.h"
#include "rankemb/eval/evaluate_model.h"
#include "rankemb/io/file.h"
#include "rankemb/pipeline/pipeline.h"

namespace rankemb::pipeline {
namespace {

namespace fs = std::filesystem;
using rankemb::test::TempDir;
using rankemb::test::fixtures_dir;

PipelineOptions toy_options(const fs::path& out) {
  PipelineOptions o;
  o.output_dir = out;
  o.seeds = fixtures_dir() / "lexical" / "golden_seeds.txt";
  o.data_dir = fixtures_dir() / "eval" / "data";
  o.student = fixtures_dir() / "models" / "tiny-bert-a";
  o.vectors_dir = fixtures_dir() / "lexical" / "glove_subset";
  o.chains = 4;
  o.steps = 4;
  o.judge_chains = 4;
  o.max_steps = 3;
  o.eval_steps = 2;
  o.dtype = Dtype::Float32;
  o.tasks = "stsb";
  return o;
}

std::string slurp(const fs::path& p) { return io::read_file(p); }

TEST(Pipeline, RunsEveryStageThenResumesWithoutWork) {
  ASSERT_TRUE(fs::exists("/usr/share/wordnet/index.noun"))
      << "WordNet 3.0 (Debian wordnet-base) is missing: bash scripts/install-deps.sh installs it";
  TempDir dir("pipeline");
  const PipelineOptions o = toy_options(dir.path() / "run");
  std::vector<Stage> announced;
  PipelineHooks hooks;
  hooks.stage = [&](Stage s, int, std::string_view) { announced.push_back(s); };

  const PipelineResult first = run_pipeline(o, hooks);
  const std::vector<Stage> all = {Stage::Generate, Stage::Quality, Stage::Train, Stage::Evaluate};
  EXPECT_EQ(first.stages_run, all);
  EXPECT_EQ(announced, all);
  for (const char* f : {"pipeline.json", "chains.jsonl", "chain_stats.json", "train/best/config.json",
                        "train/metrics.jsonl", "results.json"})
    EXPECT_TRUE(fs::exists(o.output_dir / f)) << f;
  const nlohmann::json results = io::read_json(o.output_dir / "results.json");
  EXPECT_EQ(results, first.results);
  EXPECT_EQ(results["chains"]["kept"].get<int>() + results["chains"]["dropped"].get<int>(), 4);
  EXPECT_EQ(results["train"]["steps"], 3);
  EXPECT_EQ(results["settings"]["train_dtype"], "float32");
  EXPECT_EQ(results["chain_stats"], io::read_json(o.output_dir / "chain_stats.json"));

  // The reported scores are what evaluating the two model directories on their own gives.
  NullProgress quiet;
  const auto tasks = eval::parse_tasks("stsb");
  const eval::EvalOptions eo{.data_dir = o.data_dir};
  const auto base = eval::evaluate_model_dir(o.student, {}, 64, eo, tasks, quiet);
  const auto refined = eval::evaluate_model_dir(first.refined, {}, 64, eo, tasks, quiet);
  EXPECT_EQ(results["base"]["sts"]["tasks"], eval::report_json(base)["sts"]["tasks"]);
  EXPECT_EQ(results["refined"]["sts"]["tasks"], eval::report_json(refined)["sts"]["tasks"]);
  EXPECT_EQ(first.comparison, eval::format_comparison(base, refined));

  // Second run: every stage done, nothing regenerated or retrained, the same numbers.
  const std::string chains = slurp(o.output_dir / "chains.jsonl");
  const std::string weights = slurp(first.refined / "model.safetensors");
  const PipelineResult second = run_pipeline(o, hooks);
  EXPECT_TRUE(second.stages_run.empty());
  EXPECT_EQ(second.results["base"], first.results["base"]);
  EXPECT_EQ(second.results["refined"], first.results["refined"]);
  EXPECT_EQ(second.results["train"], first.results["train"]);
  EXPECT_EQ(slurp(o.output_dir / "chains.jsonl"), chains);
  EXPECT_EQ(slurp(first.refined / "model.safetensors"), weights);

  // Other settings on the same directory are refused, naming the difference.
  PipelineOptions other = o;
  other.lr = 1e-3;
  rankemb::test::expect_error([&] { run_pipeline(other); }, ErrorCode::Usage, {"\"lr\"", "other settings"});
}

TEST(Pipeline, AStageLeftStartedIsTheOnlyOneRedone) {
  ASSERT_TRUE(fs::exists("/usr/share/wordnet/index.noun"))
      << "WordNet 3.0 (Debian wordnet-base) is missing: bash scripts/install-deps.sh installs it";
  TempDir dir("pipeline-kill");
  const PipelineOptions o = toy_options(dir.path() / "run");
  const PipelineResult first = run_pipeline(o);
  // As if the process had been killed while evaluating: the state says "started".
  nlohmann::json state = io::read_json(o.output_dir / "pipeline.json");
  state["stages"]["evaluate"] = {{"status", "started"}};
  io::write_atomic(o.output_dir / "pipeline.json", state.dump(2));
  fs::remove(o.output_dir / "results.json");
  const PipelineResult again = run_pipeline(o);
  EXPECT_EQ(again.stages_run, std::vector<Stage>{Stage::Evaluate});
  EXPECT_EQ(again.results["refined"]["sts"]["tasks"], first.results["refined"]["sts"]["tasks"]);  // seconds differ
  EXPECT_TRUE(fs::exists(o.output_dir / "results.json"));
  // Inputs that are not there: Error(Input) naming them, before any work.
  PipelineOptions missing = toy_options(dir.path() / "other");
  missing.vectors_dir = dir.path() / "no-vectors";
  rankemb::test::expect_error([&] { run_pipeline(missing); }, ErrorCode::Input, {"no-vectors"});
  EXPECT_FALSE(fs::exists(dir.path() / "other"));
}

}  // namespace
}  // namespace rankemb::pipeline
