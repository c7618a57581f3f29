// rankemb demo: the whole method offline on the embedded default (pipeline::run_pipeline): lexical
// ranking chains from SNLI seeds, their quality under a judge, refinement of all-MiniLM-L6-v2 with
// the ranking distillation loss, and the 7 STS tasks before and after. This file maps flags to
// PipelineOptions, finds the embedded default's assets, and prints what happens. A killed run
// continues where it stopped (the pipeline's state file says where).

#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "cli.h"
#include "rankemb/eval/datasets.h"
#include "rankemb/llm/llm_generator.h"
#include "rankemb/pipeline/pipeline.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"

namespace rankemb::cli {

namespace fs = std::filesystem;

namespace {
struct DemoArgs {
  std::string output = "runs/demo", seeds, data_dir, cache_dir, student, teacher, tasks = "sts";
  std::string backend = "lexical", llm;
  Dtype dtype = fastest_training_dtype();
  std::size_t chains = 300, judge_chains = 200;
  int steps = 32, eval_steps = 25, seed = 2024;
  long max_steps = 0;
  double guidance = 1.5, omega = 0.5, lr = 1e-5;
  bool set_guidance = false;
};

void say(std::string_view text) {
  if (log::level() >= log::Level::Error) fmt::print(stderr, "  {}\n", text);
}

pipeline::PipelineOptions pipeline_options(const DemoArgs& a) {
  const fs::path cache = a.cache_dir.empty() ? default_cache_dir() : fs::path(a.cache_dir);
  pipeline::PipelineOptions o;
  o.output_dir = a.output;
  o.data_dir = a.data_dir.empty() ? eval::default_data_dir() : fs::path(a.data_dir);
  o.seeds = a.seeds.empty() ? o.data_dir / "nli" / "snli_seed_sentences.txt" : fs::path(a.seeds);
  o.student = a.student.empty() ? cache / "assets" / "all-MiniLM-L6-v2" : fs::path(a.student);
  // "self" = a frozen copy of the student (the library's empty teacher).
  o.teacher = a.teacher == "self" ? fs::path() : a.teacher.empty() ? default_teacher(cache) : fs::path(a.teacher);
  o.vectors_dir = default_vectors_dir(cache);
  o.backend = a.backend;
  if (a.backend == "llm") {
    // The LLM backend runs the small-model loop on the embedded SmolLM2 (or the model given).
    const llm::SmallModelRecipe r = llm::small_model_recipe();
    o.llm.model = a.llm.empty() ? default_llm(cache) : fs::path(a.llm);
    o.llm.prompt_template = std::string(r.prompt);
    o.llm.negative = std::string(r.negative);
    o.llm.retries = r.retries;
    o.llm.max_new_tokens = r.max_new_tokens;
    if (!o.teacher.empty()) {  // the drift guard, with the teacher as its encoder (never the judge)
      o.llm.drift_margin = r.drift_margin;
      o.llm.drift_max_drop = r.drift_max_drop;
    }
    o.llm.dtype = a.dtype;  // as training
  }
  o.chains = a.chains;
  o.steps = a.steps;
  o.guidance = a.backend == "llm" && !a.set_guidance ? llm::small_model_recipe().guidance : a.guidance;
  o.judge_chains = a.judge_chains;
  o.omega = a.omega;
  o.lr = a.lr;
  o.dtype = a.dtype;
  o.eval_steps = a.eval_steps;
  if (a.max_steps > 0) o.max_steps = a.max_steps;
  o.seed = static_cast<std::uint64_t>(a.seed);
  o.tasks = a.tasks;
  o.command = command_line();
  return o;
}

// The embedded default's models come from the checkout's scripts; say which when one is missing.
void require_assets(const pipeline::PipelineOptions& o, bool default_student, bool default_teacher) {
  std::vector<fs::path> files;
  if (o.backend == "lexical") files.push_back(o.vectors_dir / "embeddings.safetensors");
  else files.push_back(o.llm.model);  // the embedded SmolLM2 unless --llm named another
  if (default_student) files.push_back(o.student / "config.json");
  if (default_teacher) files.push_back(o.teacher / "config.json");
  for (const fs::path& p : files)
    RANKEMB_CHECK(fs::exists(p), ErrorCode::Input,
                  "{} is missing: run scripts/fetch-assets.sh and scripts/convert-assets.sh from the rankemb checkout "
                  "(or set RANKEMB_CACHE_DIR to where they are)",
                  p.string());
}

int run_demo(const DemoArgs& a) {
  const pipeline::PipelineOptions o = pipeline_options(a);
  require_assets(o, a.student.empty(), a.teacher.empty());
  if (log::level() >= log::Level::Error) fmt::print(stderr, "\n[demo] embedded default models\n");
  say(fmt::format("student: {}", o.student.string()));
  say(fmt::format("teacher: {}", o.teacher.empty() ? "a frozen copy of the student" : o.teacher.string()));
  if (o.backend == "llm")
    say(fmt::format("chain LLM: {} (small-model loop; drift guard: {})", o.llm.model.string(),
                    o.llm.drift_margin ? "the teacher" : "off, no teacher to judge steps"));
  else say(fmt::format("word resources: WordNet {} + GloVe {}", o.wordnet_dir.string(), o.vectors_dir.string()));
  pipeline::PipelineHooks hooks;
  hooks.stage = [](pipeline::Stage, int number, std::string_view what) {
    if (log::level() >= log::Level::Error) fmt::print(stderr, "\n[demo {}/{}] {}\n", number, pipeline::kStages, what);
  };
  hooks.note = say;
  hooks.progress = make_progress;
  const pipeline::PipelineResult r = pipeline::run_pipeline(o, hooks);
  std::cerr << r.chain_stats_table;
  std::cout << r.comparison;
  std::cout.flush();
  say(fmt::format("done in {:.1f} min: chains, model ({}), logs, curve and results.json under {}",
                  r.results.at("seconds").get<double>() / 60, r.refined.string(), o.output_dir.string()));
  say(fmt::format("report: {} (open it in a browser; it needs no network)", r.report.string()));
  return 0;
}
}  // namespace

void register_demo(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<DemoArgs>();
  auto* cmd = root.add_subcommand(
      "demo",
      "Run the method end to end on the embedded default, offline on a CPU: lexical ranking chains from SNLI seeds, "
      "refine all-MiniLM-L6-v2 on them, compare STS before/after. A killed run continues where it stopped.");
  cmd->add_option("-o,--output", a->output, "Output directory: pipeline.json (state), chains.jsonl, chain_stats.json, train/ (model, logs, curve), results.json, report.html");
  cmd->add_option("--chains", a->chains, "Seed sentences to turn into chains (the first N of --seeds)")->check(positive());
  cmd->add_option("--steps", a->steps, "Sentences generated per chain")->check(positive());
  auto* guidance = cmd->add_option("--guidance", a->guidance,
                                   "Guidance scale g of the chain generator (1 = unconstrained; default 1.5, 2 with --backend llm)");
  cmd->add_option("--backend", a->backend,
                  "Stage 1: lexical (offline WordNet + GloVe edits, fast) or llm (the embedded SmolLM2-135M-Instruct with the "
                  "small-model loop; see --llm)")
      ->check(CLI::IsMember({"lexical", "llm"}));
  cmd->add_option("--llm", a->llm, "--backend llm: a GGUF file or Hugging Face decoder directory (default: the embedded SmolLM2)");
  cmd->add_option("--omega", a->omega, "Weight of the chain-order refinement in the training target (0 = teacher only)");
  cmd->add_option("--lr", a->lr, "Learning rate (AdamW, linear decay)")->check(non_negative());
  add_dtype_option(cmd, a->dtype,
                   "Training compute (bfloat16 autocast or float32); with --backend llm also the LLM's. Default: bfloat16 where "
                   "the CPU has it natively (AVX-512 BF16 or AMX), float32 elsewhere");
  cmd->add_option("--eval-steps", a->eval_steps, "Evaluate dev STS every this many training steps")->check(positive());
  cmd->add_option("--max-steps", a->max_steps, "Cap the training steps (0 = one epoch over the chains)")->check(non_negative());
  cmd->add_option("--judge-chains", a->judge_chains, "Chains measured by the quality report (0 = skip it)");
  cmd->add_option("--tasks", a->tasks, "Evaluation tasks before/after (as in 'rankemb eval --tasks')");
  cmd->add_option("--seed", a->seed, "Random seed of generation and training");
  cmd->add_option("--seeds", a->seeds, "Seed sentences, one per line (default: <data-dir>/nli/snli_seed_sentences.txt)");
  cmd->add_option("--student", a->student, "Encoder to refine (default: all-MiniLM-L6-v2 in the asset cache)");
  cmd->add_option("--teacher", a->teacher, "Frozen teacher (default: all-mpnet-base-v2 in the asset cache; "
                  "'self' = a frozen copy of the student)");
  cmd->add_option("--data-dir", a->data_dir, "Benchmark data directory (default: $RANKEMB_DATA_DIR or ../shared/data)");
  cmd->add_option("--cache-dir", a->cache_dir, "Asset cache (default: $RANKEMB_CACHE_DIR or the checkout's .cache)");
  cmd->callback([=, &rc] {
    a->set_guidance = guidance->count() > 0;
    rc = run_demo(*a);
  });
}

}  // namespace rankemb::cli
