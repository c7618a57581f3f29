// rankemb demo: the whole method offline on the embedded default (issue 7): lexical ranking chains
// from SNLI seeds (WordNet + GloVe, guided away from the previous step), their quality under a
// judge, refinement of all-MiniLM-L6-v2 with the ranking distillation loss, and the 7 STS tasks
// before and after. Every stage is a library call that `rankemb generate/chains/train/eval` also
// make; this file only chooses defaults, finds the assets and prints what happens. Each stage
// resumes where a killed run stopped (chains by --resume, training from its checkpoint).

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "cli.h"
#include "evaluate.h"
#include "rankemb/eval/encoder_embed.h"
#include "rankemb/eval/report.h"
#include "rankemb/generate/chain_runner.h"
#include "rankemb/generate/chain_stats.h"
#include "rankemb/generate/lexical_generator.h"
#include "rankemb/io/file.h"
#include "rankemb/models/encoder.h"
#include "rankemb/train/chains.h"
#include "rankemb/train/trainer.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"
#include "rankemb/util/progress.h"

namespace rankemb::cli {

namespace fs = std::filesystem;

namespace {
struct DemoArgs {
  std::string output = "runs/demo", seeds, data_dir, cache_dir, student, teacher, tasks = "sts", dtype = "bfloat16";
  std::size_t chains = 300, judge_chains = 200;
  int steps = 32, eval_steps = 25, seed = 2024;
  long max_steps = 0;
  double guidance = 1.5, omega = 0.5, lr = 1e-5;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void stage(int index, int total, std::string_view what) {
  if (log::level() >= log::Level::Error) fmt::print(stderr, "\n[demo {}/{}] {}\n", index, total, what);
}
void say(std::string_view text) {
  if (log::level() >= log::Level::Error) fmt::print(stderr, "  {}\n", text);
}

// Fetches and converts the embedded default assets with the checkout's own scripts when a file
// the demo needs is missing, so `rankemb demo` works on a machine where only the build ran.
void ensure_assets(const fs::path& cache, const fs::path& student, const fs::path& vectors) {
  const bool have = fs::exists(student / "config.json") && fs::exists(vectors / "embeddings.safetensors");
  if (have) return;
  const fs::path repo = source_checkout();
  RANKEMB_CHECK(!repo.empty(), ErrorCode::Input,
                "the demo needs {} and {}; run scripts/fetch-assets.sh and scripts/convert-assets.sh from the rankemb "
                "checkout (or set RANKEMB_CACHE_DIR to where they are)",
                student.string(), vectors.string());
  say(fmt::format("assets missing under {}: fetching and converting them with {}/scripts", cache.string(), repo.string()));
  const std::string env = fmt::format("RANKEMB_CACHE_DIR='{}' RANKEMB_BIN='{}'", cache.string(),
                                      fs::read_symlink("/proc/self/exe").string());
  for (const char* script : {"fetch-assets.sh", "convert-assets.sh"}) {
    const std::string command = fmt::format("{} bash '{}'", env, (repo / "scripts" / script).string());
    RANKEMB_CHECK(std::system(command.c_str()) == 0, ErrorCode::Input, "scripts/{} failed (see its messages above)", script);
  }
}

eval::EvalReport evaluate(const fs::path& model, const fs::path& data_dir, const eval::TaskSelection& tasks) {
  return evaluate_model_dir(model, {}, 64, {.data_dir = data_dir}, tasks);
}

int run_demo(const DemoArgs& a) {
  const auto started = Clock::now();
  const fs::path out = a.output;
  fs::create_directories(out);
  const fs::path data_dir = a.data_dir.empty() ? eval::default_data_dir() : fs::path(a.data_dir);
  const fs::path cache = a.cache_dir.empty() ? default_cache_dir() : fs::path(a.cache_dir);
  const fs::path student = a.student.empty() ? cache / "assets" / "all-MiniLM-L6-v2" : fs::path(a.student);
  const fs::path vectors = default_vectors_dir(cache);
  const fs::path seeds_path = a.seeds.empty() ? data_dir / "nli" / "snli_seed_sentences.txt" : fs::path(a.seeds);
  const auto tasks = eval::parse_tasks(a.tasks);  // before any work: a bad list fails fast
  nlohmann::json results = {{"settings",
                             {{"student", student.string()},
                              {"teacher", a.teacher.empty() ? "frozen copy of the student" : a.teacher},
                              {"seeds", seeds_path.string()},
                              {"chains", a.chains},
                              {"steps", a.steps},
                              {"guidance", a.guidance},
                              {"omega", a.omega},
                              {"lr", a.lr},
                              {"train_dtype", a.dtype},
                              {"seed", a.seed},
                              {"tasks", a.tasks}}}};
  constexpr int kStages = 5;

  stage(1, kStages, "embedded default models");
  ensure_assets(cache, student, vectors);
  say(fmt::format("student: {} (all-MiniLM-L6-v2)", student.string()));
  say(fmt::format("teacher: {}", a.teacher.empty() ? "a frozen copy of the student" : a.teacher));
  say(fmt::format("word resources: WordNet {} + GloVe {}", generate::LexicalGeneratorOptions{}.wordnet_dir.string(),
                  vectors.string()));

  stage(2, kStages, fmt::format("generating {} chains of {} steps from {} (lexical backend, guidance {})", a.chains,
                                a.steps, seeds_path.string(), a.guidance));
  auto t = Clock::now();
  const fs::path chains_path = out / "chains.jsonl";
  {
    const auto seed_file = generate::read_seeds(seeds_path);
    const auto seeds = generate::select_seeds(seed_file.seeds, a.chains, {});
    generate::LexicalGeneratorOptions lo;
    lo.vectors_dir = vectors;
    lo.guidance = a.guidance;
    lo.seed = static_cast<std::uint64_t>(a.seed);
    auto backend = generate::make_lexical_generator(lo);
    generate::RunOptions ro;
    ro.steps = a.steps;
    ro.output = chains_path;
    ro.resume = fs::exists(chains_path) && fs::exists(generate::meta_path(chains_path));
    ro.overwrite = !ro.resume && fs::exists(chains_path);
    ro.seed_file_name = seed_file.name;
    ro.seed_file_size = seed_file.size;
    ro.seed_file_hash = seed_file.hash;
    ro.limit = a.chains;
    if (ro.resume) say(fmt::format("{} exists: resuming it (its settings must match)", chains_path.string()));
    auto progress = make_progress();
    const auto summary = generate::run_chains(*backend, seeds, ro, *progress);
    say(fmt::format("{} -> {}", generate::format_run_summary(summary), chains_path.string()));
    results["chains"] = {{"file", chains_path.string()}, {"kept", summary.kept}, {"dropped", summary.dropped},
                         {"resumed", summary.chains_resumed}, {"seconds", seconds_since(t)}};
  }

  stage(3, kStages, fmt::format("chain quality: drift of the first {} chains under the student as judge", a.judge_chains));
  if (a.judge_chains > 0) {
    auto records = generate::read_chain_records(chains_path);
    if (records.size() > a.judge_chains) records.resize(a.judge_chains);
    auto judge = models::load_encoder(student, {});
    NullProgress quiet;
    auto progress = make_progress();
    const auto embed = eval::encoder_embed_fn(*judge, {.batch = 64}, *progress);
    const auto stats = generate::chain_stats(records, &embed, {.batch_size = 0}, quiet);
    std::cerr << generate::format_chain_stats(stats);
    results["chain_stats"] = generate::chain_stats_json(stats);
    io::write_atomic(out / "chain_stats.json", results["chain_stats"].dump(2) + "\n");
  } else {
    say("skipped (--judge-chains 0)");
  }

  stage(4, kStages, fmt::format("refining {} on the chains (ranking distillation, omega {}, lr {}, {})", student.string(),
                                a.omega, a.lr, a.dtype));
  t = Clock::now();
  const fs::path run_dir = out / "train";
  const fs::path refined = run_dir / "best";
  const fs::path done_marker = run_dir / "demo_done.json";
  if (fs::exists(done_marker) && fs::exists(refined / "config.json")) {
    say(fmt::format("{} finished earlier: reusing {}", run_dir.string(), refined.string()));
    results["train"] = io::read_json(done_marker, ErrorCode::Input);
  } else {
    train::ChainFile file = train::read_chains(chains_path);
    train::TrainOptions o;
    o.student = student;
    o.teacher = a.teacher;
    o.output_dir = run_dir;
    o.loss.omega = a.omega;
    o.lr = a.lr;
    o.seed = static_cast<std::uint64_t>(a.seed);
    o.dtype = a.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
    o.eval_steps = a.eval_steps;
    o.data_dir = data_dir;
    if (a.max_steps > 0) o.max_steps = a.max_steps;
    o.resume = fs::exists(run_dir / "checkpoint");
    if (o.resume) say(fmt::format("{} holds an unfinished run: resuming it", run_dir.string()));
    say(fmt::format("{} chains ({} dropped by the filters); dev STS (STS-B dev + SICK-R dev) every {} steps, best kept",
                    file.chains.size(), file.n_dropped, a.eval_steps));
    train::Trainer trainer(std::move(file.chains), o);
    auto progress = make_progress();
    const train::TrainResult r = trainer.run(*progress);
    nlohmann::json j = {{"steps", r.steps_done}, {"best_step", r.best_step}, {"seconds", seconds_since(t)}};
    if (r.best_score) j["best_dev"] = *r.best_score;
    if (!r.evals.empty()) j["first_dev"] = r.evals.front().score;
    io::write_atomic(done_marker, j.dump(2) + "\n");
    results["train"] = j;
    say(fmt::format("{} steps in {:.0f} s; best dev {:.2f} at step {} -> {}", r.steps_done, seconds_since(t),
                    r.best_score.value_or(0) * 100, r.best_step, refined.string()));
    say(fmt::format("training log {}, curve {}", (run_dir / "metrics.jsonl").string(), (run_dir / "curve.svg").string()));
  }

  stage(5, kStages, fmt::format("evaluating base and refined on {} (SentEval text)", a.tasks));
  t = Clock::now();
  const auto base = evaluate(student, data_dir, tasks);
  const auto after = evaluate(refined, data_dir, tasks);
  std::cout << eval::format_comparison(base, after);
  std::cout.flush();
  results["base"] = eval::report_json(base);
  results["refined"] = eval::report_json(after);
  results["eval_seconds"] = seconds_since(t);
  results["seconds"] = seconds_since(started);
  io::write_atomic(out / "results.json", results.dump(2) + "\n");
  say(fmt::format("done in {:.1f} min: chains, model ({}), logs, curve and results.json under {}",
                  seconds_since(started) / 60, refined.string(), out.string()));
  return 0;
}
}  // namespace

void register_demo(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<DemoArgs>();
  auto* cmd = root.add_subcommand(
      "demo",
      "Run the method end to end on the embedded default, offline on a CPU: lexical ranking chains from SNLI seeds, "
      "refine all-MiniLM-L6-v2 on them, compare STS before/after. A killed run continues where it stopped.");
  cmd->add_option("-o,--output", a->output, "Output directory: chains.jsonl, chain_stats.json, train/ (model, logs, curve), results.json");
  cmd->add_option("--chains", a->chains, "Seed sentences to turn into chains (the first N of --seeds)")->check(CLI::PositiveNumber);
  cmd->add_option("--steps", a->steps, "Sentences generated per chain")->check(CLI::PositiveNumber);
  cmd->add_option("--guidance", a->guidance, "Guidance scale g of the chain generator (1 = unconstrained)");
  cmd->add_option("--omega", a->omega, "Weight of the chain-order refinement in the training target (0 = teacher only)");
  cmd->add_option("--lr", a->lr, "Learning rate (AdamW, linear decay)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--dtype", a->dtype, "Training compute: bfloat16 autocast or float32")->check(CLI::IsMember({"float32", "bfloat16"}));
  cmd->add_option("--eval-steps", a->eval_steps, "Evaluate dev STS every this many training steps")->check(CLI::PositiveNumber);
  cmd->add_option("--max-steps", a->max_steps, "Cap the training steps (0 = one epoch over the chains)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--judge-chains", a->judge_chains, "Chains measured by the quality report (0 = skip it)");
  cmd->add_option("--tasks", a->tasks, "Evaluation tasks before/after (as in 'rankemb eval --tasks')");
  cmd->add_option("--seed", a->seed, "Random seed of generation and training");
  cmd->add_option("--seeds", a->seeds, "Seed sentences, one per line (default: <data-dir>/nli/snli_seed_sentences.txt)");
  cmd->add_option("--student", a->student, "Encoder to refine (default: all-MiniLM-L6-v2 in the asset cache)");
  cmd->add_option("--teacher", a->teacher, "Frozen teacher (default: a frozen copy of the student)");
  cmd->add_option("--data-dir", a->data_dir, "Benchmark data directory (default: $RANKEMB_DATA_DIR or ../shared/data)");
  cmd->add_option("--cache-dir", a->cache_dir, "Asset cache (default: $RANKEMB_CACHE_DIR or the checkout's .cache)");
  cmd->callback([a, &rc] { rc = run_demo(*a); });
}

}  // namespace rankemb::cli
