// rankemb::pipeline owns the method end to end as one library call (`rankemb demo` maps its flags
// to PipelineOptions and prints): (1) generate ranking chains from seed sentences with the offline
// lexical backend (or an LLM: PipelineOptions::backend), (2) the chain quality report under the student as judge, (3) refine the
// student with the ranking distillation loss, (4) evaluate base and refined side by side.
// Each stage is a call into its own folder (generate/lexical, quality, train, eval); this file
// orders them, decides what a rerun resumes, and writes the results.
//
// Run directory (PipelineOptions::output_dir):
//   pipeline.json     the state file: {"version": 1, "settings": {...}, "stages": {"<stage>":
//                     {"status": "started" | "done", "result": {...}}}}. Resume decisions read it
//                     and nothing else: a done stage is reused, a started one resumes (chains by
//                     generate's resume, training from its checkpoint), a missing one starts
//                     afresh (replacing what a file of that name holds). A rerun with other
//                     settings is refused (Error(Usage) naming the first difference).
//   chains.jsonl (+ .meta.json)   stage 1, the chain file (chains/)
//   chain_stats.json              stage 2, quality::chain_stats_json of the judged chains
//   train/                        stage 3, the trainer's run directory (train/trainer.h); train/best
//                                 is the refined model
//   results.json                  written at the end, the schema below
//   report.html                   written last: report::render_report of this directory
//
// results.json:
//   {"settings": {"student", "teacher", "seeds", "chains", "steps", "guidance", "omega", "lr",
//                 "train_dtype", "seed", "tasks"},
//    "chains": {"file", "kept", "dropped", "resumed", "seconds"},
//    "chain_stats": quality::chain_stats_json (absent when judge_chains = 0),
//    "train": {"steps", "best_step", "seconds", "best_dev", "first_dev"},
//    "base", "refined": eval::report_json of the two models,
//    "eval_seconds", "seconds" (this invocation), "command" (when PipelineOptions::command is set)}
// Stage results are those of the invocation that ran the stage (kept in pipeline.json).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "rankemb/util/progress.h"
#include "rankemb/util/types.h"

namespace rankemb::pipeline {

// Stage 1 on an LLM (backend "llm"): the decoder and the small-model loop of llm/ and generate/.
struct LlmChainOptions {
  std::filesystem::path model;        // GGUF file or Hugging Face directory
  std::string prompt_template;        // text with "{sentence}"; empty = the paper's prompt
  std::string negative = "previous";  // llm::LlmGeneratorOptions::negative
  int retries = 0;                    // generate::RunOptions::retries (the copy guard)
  // The drift guard (generate::DriftGuard) with this margin, judged by the teacher (required: the
  // student judges the chains); nullopt = no drift guard.
  std::optional<double> drift_margin;
  double drift_max_drop = 2.0;        // generate::DriftGuard::max_drop (2 = never refuses)
  int max_new_tokens = 100;
  Dtype dtype = Dtype::Float32;       // generation compute
  std::size_t batch = 32;             // chains decoded together (does not change the chains)
};

struct PipelineOptions {
  std::filesystem::path output_dir = "runs/demo";
  std::filesystem::path seeds;        // seed sentences, one per line
  std::filesystem::path data_dir;     // benchmark data (dev selection and evaluation); empty = eval::default_data_dir()
  std::filesystem::path student;      // encoder to refine (a model directory)
  std::filesystem::path teacher;      // frozen teacher; empty = a frozen copy of the student
  std::filesystem::path vectors_dir;  // GloVe for the lexical backend (lexical::LexicalGeneratorOptions)
  std::filesystem::path wordnet_dir = "/usr/share/wordnet";
  std::string backend = "lexical";    // stage 1: "lexical" (offline, fast) or "llm"
  LlmChainOptions llm;                // backend "llm" only
  std::size_t chains = 300;           // the first N seeds become chains
  int steps = 32;                     // sentences generated per chain
  double guidance = 1.5;              // g of the chain generator
  std::size_t judge_chains = 200;     // chains measured by the quality report (0 = skip it)
  double omega = 0.5;                 // weight of the chain-order refinement in the target
  double lr = 1e-5;
  Dtype dtype = Dtype::BFloat16;      // training compute
  int eval_steps = 25;                // dev STS every this many training steps
  std::optional<std::int64_t> max_steps;  // caps training (nullopt = one epoch)
  std::uint64_t seed = 2024;          // generation and training
  std::string tasks = "sts";          // evaluation tasks (eval::parse_tasks)
  std::string command;                // the command line that started the run (results.json, report); not a setting
};

enum class Stage { Generate, Quality, Train, Evaluate };
constexpr int kStages = 4;
std::string_view stage_name(Stage stage);  // "generate", "quality", "train", "evaluate"

// How a caller sees a run. Every member may be left empty.
struct PipelineHooks {
  // A stage begins: its 1-based number of kStages and what it does, in words.
  std::function<void(Stage stage, int number, std::string_view what)> stage;
  // A line worth showing (what was reused, resumed or written).
  std::function<void(std::string_view line)> note;
  // A progress display for long work; empty = none.
  std::function<std::unique_ptr<Progress>()> progress;
};

struct PipelineResult {
  nlohmann::json results;          // results.json as written
  std::vector<Stage> stages_run;   // stages this invocation worked on (empty when all were done)
  std::string chain_stats_table;   // quality::format_chain_stats of the judged chains ("" when skipped)
  std::string comparison;          // eval::format_comparison(base, refined)
  std::filesystem::path refined;   // the refined model directory
  std::filesystem::path report;    // report.html of the run
};

// Runs (or resumes) the pipeline. Throws Error(Usage) for bad options or a run directory made
// with other settings, Error(Input) naming a missing input (seeds, student, vectors, WordNet);
// stage errors pass through with everything written so far kept for the rerun.
PipelineResult run_pipeline(const PipelineOptions& options, const PipelineHooks& hooks = {});

// The settings a run directory is bound to (recorded in pipeline.json and results.json).
nlohmann::json pipeline_settings(const PipelineOptions& options);

}  // namespace rankemb::pipeline
