#include "rankemb/pipeline/pipeline.h"

#include <chrono>

#include <fmt/format.h>

#include "rankemb/chains/record.h"
#include "rankemb/chains/settings.h"
#include "rankemb/chains/training.h"
#include "rankemb/eval/evaluate_model.h"
#include "rankemb/generate/chain_runner.h"
#include "rankemb/generate/seeds.h"
#include "rankemb/io/file.h"
#include "rankemb/lexical/lexical_generator.h"
#include "rankemb/llm/llm_generator.h"
#include "rankemb/models/embed.h"
#include "rankemb/models/encoder.h"
#include "rankemb/quality/chain_stats.h"
#include "rankemb/report/report.h"
#include "rankemb/train/trainer.h"
#include "rankemb/util/error.h"

namespace rankemb::pipeline {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string_view stage_name(Stage stage) {
  switch (stage) {
    case Stage::Generate: return "generate";
    case Stage::Quality: return "quality";
    case Stage::Train: return "train";
    case Stage::Evaluate: return "evaluate";
  }
  return "?";
}

// The LLM backend's settings; recorded only for that backend, so the state files of lexical runs
// read as before.
static Json llm_settings(const PipelineOptions& o) {
  const LlmChainOptions& l = o.llm;
  const Json prompt = l.prompt_template.empty() ? Json() : Json(generate::fnv1a64_hex(l.prompt_template));
  Json j{{"model", l.model.string()},  {"prompt", prompt},                  {"negative", l.negative},
         {"retries", l.retries},       {"max_new_tokens", l.max_new_tokens}, {"dtype", std::string(dtype_name(l.dtype))}};
  if (l.drift_margin) {  // absent: as the runs from before the guard
    j["drift_margin"] = *l.drift_margin;
    j["drift_max_drop"] = l.drift_max_drop;
  }
  return j;
}

Json pipeline_settings(const PipelineOptions& o) {
  Json s{{"seeds", o.seeds.string()},         {"data_dir", o.data_dir.string()},
              {"student", o.student.string()},     {"teacher", o.teacher.string()},
              {"vectors_dir", o.vectors_dir.string()}, {"wordnet_dir", o.wordnet_dir.string()},
              {"chains", o.chains},                {"steps", o.steps},
              {"guidance", o.guidance},            {"judge_chains", o.judge_chains},
              {"omega", o.omega},                  {"lr", o.lr},
              {"dtype", std::string(dtype_name(o.dtype))}, {"eval_steps", o.eval_steps},
              {"max_steps", o.max_steps ? Json(*o.max_steps) : Json()}, {"seed", o.seed},
              {"tasks", o.tasks}};
  if (o.backend == "llm") s["llm"] = llm_settings(o);
  return s;
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

constexpr int kStateVersion = 1;

// The "settings" block of results.json (its schema is older than pipeline.json's).
Json results_settings(const PipelineOptions& o) {
  return Json{{"student", o.student.string()},
              {"teacher", o.teacher.empty() ? "frozen copy of the student" : o.teacher.string()},
              {"seeds", o.seeds.string()},
              {"chains", o.chains},
              {"steps", o.steps},
              {"guidance", o.guidance},
              {"omega", o.omega},
              {"lr", o.lr},
              {"train_dtype", std::string(dtype_name(o.dtype))},
              {"seed", o.seed},
              {"tasks", o.tasks}};
}

void check_inputs(const PipelineOptions& o) {
  RANKEMB_CHECK(!o.output_dir.empty(), ErrorCode::Usage, "pipeline: no output directory");
  RANKEMB_CHECK(o.chains > 0 && o.steps > 0 && o.eval_steps > 0, ErrorCode::Usage,
                "pipeline: chains, steps and eval_steps must be positive");
  RANKEMB_CHECK(o.backend == "lexical" || o.backend == "llm", ErrorCode::Usage, "pipeline: unknown backend {:?} (lexical, llm)",
                o.backend);
  std::vector<std::pair<fs::path, const char*>> inputs = {{o.seeds, "seed sentences"}, {o.student / "config.json", "student model"}};
  if (o.backend == "lexical") {
    inputs.emplace_back(o.vectors_dir / "embeddings.safetensors", "word vectors of the lexical backend");
    inputs.emplace_back(o.wordnet_dir / "index.noun", "WordNet of the lexical backend");
  } else {
    inputs.emplace_back(o.llm.model, "LLM of the llm backend");
  }
  for (const auto& [path, what] : inputs)
    RANKEMB_CHECK(fs::exists(path), ErrorCode::Input, "pipeline: {} not found: {}", what, path.string());
}

// pipeline.json: which stages are done, and what they produced.
class StateFile {
 public:
  StateFile(fs::path path, Json settings) : path_(std::move(path)) {
    if (!fs::exists(path_)) {
      state_ = Json{{"version", kStateVersion}, {"settings", std::move(settings)}, {"stages", Json::object()}};
      return;
    }
    state_ = io::read_json(path_, ErrorCode::Input);
    RANKEMB_CHECK(state_.is_object() && state_.value("version", 0) == kStateVersion && state_.contains("stages"),
                  ErrorCode::Input, "{}: not a pipeline state file of version {}", path_.string(), kStateVersion);
    if (const auto diff = chains::settings_difference(state_.at("settings"), settings))
      fail(ErrorCode::Usage, "{} was made with other settings ({}); rerun with the same options or use another output "
           "directory", path_.parent_path().string(), *diff);
  }
  bool empty() const { return state_.at("stages").empty(); }
  bool done(Stage s) const { return status(s) == "done"; }
  bool started(Stage s) const { return status(s) == "started"; }
  const Json& result(Stage s) const { return state_.at("stages").at(std::string(stage_name(s))).at("result"); }
  void mark_started(Stage s) { set(s, Json{{"status", "started"}}); }
  void mark_done(Stage s, Json result) { set(s, Json{{"status", "done"}, {"result", std::move(result)}}); }

 private:
  std::string status(Stage s) const {
    const Json& stages = state_.at("stages");
    const auto it = stages.find(std::string(stage_name(s)));
    return it == stages.end() ? "" : it->value("status", "");
  }
  void set(Stage s, Json entry) {
    state_["stages"][std::string(stage_name(s))] = std::move(entry);
    io::write_atomic(path_, state_.dump(2) + "\n");
  }
  fs::path path_;
  Json state_;
};

class PipelineRun {
 public:
  PipelineRun(const PipelineOptions& o, const PipelineHooks& hooks)
      : o_(o), hooks_(hooks), state_(o.output_dir / "pipeline.json", pipeline_settings(o)) {}

  PipelineResult run() {
    const auto started = Clock::now();
    if (!state_.empty()) note(fmt::format("resuming {} (its pipeline.json records the stages done)", o_.output_dir.string()));
    const Json chains = stage(Stage::Generate, [&] { return generate(); });
    if (o_.judge_chains > 0) stage(Stage::Quality, [&] { return judge(); });
    const Json train = stage(Stage::Train, [&] { return refine(); });
    const Json eval = stage(Stage::Evaluate, [&] { return evaluate(); });
    result_.refined = refined_dir();
    result_.comparison = eval.at("table").get<std::string>();
    Json& r = result_.results;
    r = Json{{"settings", results_settings(o_)}, {"chains", chains}};
    if (!o_.command.empty()) r["command"] = o_.command;
    if (o_.judge_chains > 0) {
      r["chain_stats"] = state_.result(Stage::Quality).at("stats");
      result_.chain_stats_table = state_.result(Stage::Quality).at("table").get<std::string>();
    }
    r["train"] = train;
    r["base"] = eval.at("base");
    r["refined"] = eval.at("refined");
    r["eval_seconds"] = eval.at("seconds");
    r["seconds"] = seconds_since(started);
    // Replace, not throw, for bytes that are not UTF-8 (a command line or path may hold them).
    io::write_atomic(o_.output_dir / "results.json", r.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
    write_report();
    return std::move(result_);
  }

 private:
  fs::path chains_path() const { return o_.output_dir / "chains.jsonl"; }
  fs::path train_dir() const { return o_.output_dir / "train"; }
  fs::path refined_dir() const { return train_dir() / "best"; }
  void note(std::string_view line) const {
    if (hooks_.note) hooks_.note(line);
  }
  std::unique_ptr<Progress> progress() const {
    return hooks_.progress ? hooks_.progress() : std::make_unique<NullProgress>();
  }

  // Runs `work` unless pipeline.json says the stage is done; returns the stage's result.
  template <typename Work>
  Json stage(Stage s, Work&& work) {
    const int number = static_cast<int>(s) + 1;
    if (hooks_.stage) hooks_.stage(s, number, describe(s));
    if (state_.done(s)) {
      note(fmt::format("stage {} finished earlier: reusing its results", stage_name(s)));
      return state_.result(s);
    }
    resuming_ = state_.started(s);
    state_.mark_started(s);
    result_.stages_run.push_back(s);
    Json r = work();
    state_.mark_done(s, r);
    return r;
  }

  std::string describe(Stage s) const {
    switch (s) {
      case Stage::Generate:
        return fmt::format("generating {} chains of {} steps from {} ({} backend, guidance {})", o_.chains, o_.steps,
                           o_.seeds.string(), o_.backend == "llm" ? "LLM " + o_.llm.model.filename().string() : "lexical",
                           o_.guidance);
      case Stage::Quality:
        return fmt::format("chain quality: drift of the first {} chains under the student as judge", o_.judge_chains);
      case Stage::Train:
        return fmt::format("refining {} on the chains (ranking distillation, omega {}, lr {}, {})", o_.student.string(),
                           o_.omega, o_.lr, dtype_name(o_.dtype));
      case Stage::Evaluate:
        return fmt::format("evaluating base and refined on {} (SentEval text)", o_.tasks);
    }
    return {};
  }

  // report.html from the files just written (report/: the same numbers, drawn).
  void write_report() {
    report::ReportInputs inputs{.runs = {report::read_run(o_.output_dir)}, .chain_sets = {}, .command = o_.command};
    result_.report = o_.output_dir / "report.html";
    io::write_atomic(result_.report, report::render_report(inputs));
  }

  std::unique_ptr<generate::SentenceGenerator> make_backend() const;
  Json generate();
  Json judge();
  Json refine();
  Json evaluate();

  const PipelineOptions& o_;
  const PipelineHooks& hooks_;
  StateFile state_;
  bool resuming_ = false;  // the current stage was started by an earlier invocation
  PipelineResult result_;
};

Json PipelineRun::generate() {
  const auto t = Clock::now();
  const auto seed_file = generate::read_seeds(o_.seeds);
  const auto seeds = generate::select_seeds(seed_file.seeds, o_.chains, {});
  auto backend = make_backend();
  std::unique_ptr<models::SentenceEncoder> guard;  // before `ro`, whose guard refers to it
  generate::RunOptions ro;
  if (o_.backend == "llm") {
    ro.retries = o_.llm.retries;
    ro.settings = llm_settings(o_);
    if (o_.llm.drift_margin) {
      // The teacher judges steps; never the student, which judges the chains in the next stage.
      RANKEMB_CHECK(!o_.teacher.empty(), ErrorCode::Usage, "the drift guard needs a teacher (the student judges the chains)");
      const fs::path& model = o_.teacher;
      guard = models::load_encoder(model, {.dtype = o_.llm.dtype});
      ro.drift_guard = generate::DriftGuard{.embed = models::per_text_embed_fn(*guard),
                                            .model = llm::model_name(model),
                                            .margin = *o_.llm.drift_margin,
                                            .max_drop = o_.llm.drift_max_drop};
    }
  }
  ro.steps = o_.steps;
  ro.output = chains_path();
  ro.resume = resuming_;
  ro.overwrite = !resuming_;
  generate::set_seed_file(ro, seed_file);
  ro.limit = o_.chains;
  if (resuming_) note(fmt::format("{}: resuming the interrupted generation (its settings must match)", ro.output.string()));
  const auto bar = progress();
  const auto summary = generate::run_chains(*backend, seeds, ro, *bar);
  note(fmt::format("{} -> {}", generate::format_run_summary(summary), ro.output.string()));
  return Json{{"file", ro.output.string()}, {"kept", summary.kept}, {"dropped", summary.dropped},
              {"resumed", summary.chains_resumed}, {"seconds", seconds_since(t)}};
}

std::unique_ptr<generate::SentenceGenerator> PipelineRun::make_backend() const {
  if (o_.backend == "llm") {
    llm::LlmGeneratorOptions lo;
    lo.model_dir = o_.llm.model;
    lo.guidance = o_.guidance;
    lo.max_new_tokens = o_.llm.max_new_tokens;
    lo.prompt_template = o_.llm.prompt_template;
    lo.negative = o_.llm.negative;
    lo.seed = o_.seed;
    lo.dtype = o_.llm.dtype;
    lo.batch = o_.llm.batch;
    return llm::make_llm_generator(lo);
  }
  lexical::LexicalGeneratorOptions lo;
  lo.vectors_dir = o_.vectors_dir;
  lo.wordnet_dir = o_.wordnet_dir;
  lo.guidance = o_.guidance;
  lo.seed = o_.seed;
  return lexical::make_lexical_generator(lo);
}

Json PipelineRun::judge() {
  auto records = chains::read_chain_records(chains_path());
  if (records.size() > o_.judge_chains) records.resize(o_.judge_chains);
  auto judge = models::load_encoder(o_.student, {});
  NullProgress quiet;
  const auto bar = progress();
  const auto embed = models::encoder_embed_fn(*judge, {.batch = 64}, *bar);
  // Examples for the report: a few chains as they read, three with their similarity matrices.
  const auto stats = quality::chain_stats(records, &embed, {.batch_size = 0, .examples = 6, .matrices = 3}, quiet);
  Json j = quality::chain_stats_json(stats);
  io::write_atomic(o_.output_dir / "chain_stats.json", j.dump(2) + "\n");
  return Json{{"stats", std::move(j)}, {"table", quality::format_chain_stats(stats)}};
}

Json PipelineRun::refine() {
  const auto t = Clock::now();
  chains::ChainFile file = chains::read_chains(chains_path(), {.strict = true});
  train::TrainOptions o;
  o.student = o_.student;
  o.teacher = o_.teacher;
  o.output_dir = train_dir();
  o.loss.omega = o_.omega;
  o.lr = o_.lr;
  o.seed = o_.seed;
  o.dtype = o_.dtype;
  o.eval_steps = o_.eval_steps;
  o.data_dir = o_.data_dir;
  o.max_steps = o_.max_steps;
  // A started stage resumes from the trainer's checkpoint when the kill came after one.
  o.resume = resuming_ && train::has_checkpoint(train_dir());
  if (!o.resume) fs::remove_all(train_dir());
  if (o.resume) note(fmt::format("{} holds an unfinished run: resuming it", train_dir().string()));
  note(fmt::format("{} chains ({} dropped by the filters); dev STS (STS-B dev + SICK-R dev) every {} steps, best kept",
                   file.chains.size(), file.n_dropped, o_.eval_steps));
  train::Trainer trainer(std::move(file.chains), o);
  const auto bar = progress();
  const train::TrainResult r = trainer.run(*bar);
  Json j = {{"steps", r.steps_done}, {"best_step", r.best_step}, {"seconds", seconds_since(t)}};
  if (r.best_score) j["best_dev"] = *r.best_score;
  if (!r.evals.empty()) j["first_dev"] = r.evals.front().score;
  note(fmt::format("{} steps in {:.0f} s; best dev {:.2f} at step {} -> {}", r.steps_done, seconds_since(t),
                   r.best_score.value_or(0) * 100, r.best_step, refined_dir().string()));
  note(fmt::format("training log {}, curve {}", (train_dir() / "metrics.jsonl").string(),
                   (train_dir() / "curve.svg").string()));
  return j;
}

Json PipelineRun::evaluate() {
  const auto t = Clock::now();
  const auto tasks = eval::parse_tasks(o_.tasks);
  const eval::EvalOptions options{.data_dir = o_.data_dir};
  const auto bar = progress();
  const auto base = eval::evaluate_model_dir(o_.student, {}, 64, options, tasks, *bar);
  const auto after = eval::evaluate_model_dir(refined_dir(), {}, 64, options, tasks, *bar);
  return Json{{"base", eval::report_json(base)}, {"refined", eval::report_json(after)},
              {"table", eval::format_comparison(base, after)}, {"seconds", seconds_since(t)}};
}

}  // namespace

PipelineResult run_pipeline(const PipelineOptions& options, const PipelineHooks& hooks) {
  check_inputs(options);
  eval::parse_tasks(options.tasks);  // a bad task list fails before any work
  io::create_output_directory(options.output_dir);
  return PipelineRun(options, hooks).run();
}

}  // namespace rankemb::pipeline
