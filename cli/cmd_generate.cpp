// rankemb generate: ranking chains from seed sentences, with an in-process LLM and
// classifier-free guidance (issue 6) or the offline lexical backend (issue 7). The chain loop,
// filters, ordered output, --resume and sharding are generate::run_chains; this file parses the
// options, builds the backend (make_backend, the one place that knows the backends) and prints
// the summary.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli.h"
#include "model_service.h"
#include "rankemb/dist/env.h"
#include "rankemb/generate/chain_runner.h"
#include "rankemb/lexical/lexical_generator.h"
#include "rankemb/llm/llm_generator.h"
#include "rankemb/generate/seeds.h"
#include "rankemb/generate/sentence_generator.h"
#include "rankemb/io/file.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"
#include "rankemb/util/progress.h"

namespace rankemb::cli {

namespace {
struct GenerateArgs {
  std::string model, seeds, output, backend = "llm", prompt, chat_template = "auto", shard;
  std::string negative = "previous", copy_prompt;
  Dtype dtype = Dtype::Float32;
  Device device;
  int steps = 32, max_new_tokens = 100, batch = 16, seed = 0, retries = 0;
  double retry_temperature = 0.8;
  std::string drift_guard;  // encoder directory; "" = no drift guard
  // The drift guard's bounds: the small-model recipe's, whichever preset (margin 0 and no max drop
  // let a chain run off to unrelated text: README "The drift guard").
  double drift_margin = llm::small_model_recipe().drift_margin, drift_max_drop = llm::small_model_recipe().drift_max_drop;
  bool no_prefix_cache = false;
  std::string preset = "auto";
  // Which of the preset's options the command line set itself (those keep their value).
  bool set_guidance = false, set_negative = false, set_retries = false, set_max_new_tokens = false,
       set_drift_bounds = false;
  long long limit = -1;  // -1 = every seed
  double guidance = 1.5, temperature = 0.0, top_p = 1.0;
  std::string vectors, wordnet = "/usr/share/wordnet";
  bool resume = false, overwrite = false;
};

// --preset: "small-llm" fills the options the command line left unset with llm::small_model_recipe();
// "auto" means small-llm for the embedded SmolLM2 (no -m) and the paper's loop for a model given
// with -m. Returns the prompt template text to use ("" = the paper's, or the --prompt file).
std::string apply_preset(GenerateArgs& a, const std::string& prompt_file_text) {
  const bool small = a.backend == "llm" && (a.preset == "small-llm" || (a.preset == "auto" && a.model.empty()));
  a.drift_guard = drift_guard_encoder(a.drift_guard, small);
  if (!small) return prompt_file_text;
  const llm::SmallModelRecipe r = llm::small_model_recipe();
  if (!a.set_guidance) a.guidance = r.guidance;
  if (!a.set_negative) a.negative = std::string(r.negative);
  if (!a.set_retries) a.retries = r.retries;
  if (!a.set_max_new_tokens) a.max_new_tokens = r.max_new_tokens;
  return a.prompt.empty() ? std::string(r.prompt) : prompt_file_text;
}

// The only place that constructs a backend. `prompt` is the --prompt file's text (read once by the
// caller, which also records its hash).
std::unique_ptr<generate::SentenceGenerator> make_backend(const GenerateArgs& a, const std::string& prompt,
                                                         const std::string& copy_prompt) {
  if (a.backend == "lexical") {
    lexical::LexicalGeneratorOptions o;
    o.vectors_dir = a.vectors.empty() ? default_vectors_dir() : std::filesystem::path(a.vectors);
    o.wordnet_dir = a.wordnet;
    o.guidance = a.guidance;
    o.seed = static_cast<std::uint64_t>(a.seed);
    o.batch = static_cast<std::size_t>(a.batch);
    return lexical::make_lexical_generator(o);
  }
  llm::LlmGeneratorOptions o;
  o.model_dir = a.model.empty() ? default_llm() : std::filesystem::path(a.model);
  o.batch = static_cast<std::size_t>(a.batch);
  o.guidance = a.guidance;
  o.max_new_tokens = a.max_new_tokens;
  o.prompt_template = prompt;  // "" = the paper's
  o.chat_template = a.chat_template;
  o.temperature = a.temperature;
  o.top_p = a.top_p;
  o.seed = static_cast<std::uint64_t>(a.seed);
  o.dtype = a.dtype;
  o.device = dist::rank_device(a.device);
  o.negative = a.negative;
  if (!a.copy_prompt.empty()) o.copy_prompt_template = copy_prompt;
  o.retry_temperature = a.retry_temperature;
  o.share_prefix = !a.no_prefix_cache;
  return llm::make_llm_generator(o);
}

// Options that change the generated text are recorded in the run's meta and checked by --resume
// (--batch is not: a backend's output must not depend on its batch).
nlohmann::json backend_settings(const GenerateArgs& a, const std::string& prompt, const std::string& copy_prompt) {
  nlohmann::json s = {{"backend", a.backend},         {"max_new_tokens", a.max_new_tokens},
                      {"chat_template", a.chat_template}, {"temperature", a.temperature},
                      {"top_p", a.top_p},             {"seed", a.seed},
                      {"dtype", dtype_name(a.dtype)}};
  s["prompt"] = prompt.empty() ? nlohmann::json() : nlohmann::json(generate::fnv1a64_hex(prompt));
  // The small-model settings are recorded only when they differ from the paper's loop, so the
  // meta of a paper run reads (and resumes) as before.
  if (a.negative != "previous") s["negative"] = a.negative;
  if (!a.copy_prompt.empty()) s["copy_prompt"] = generate::fnv1a64_hex(copy_prompt);
  if (a.retries > 0) s["retry_temperature"] = a.retry_temperature;
  return s;
}

int run_generate(GenerateArgs a) {
  if (a.steps < 1) fail(ErrorCode::Usage, "--steps must be at least 1 (got {})", a.steps);
  if (a.resume && a.overwrite) fail(ErrorCode::Usage, "--resume and --overwrite exclude each other");
  if (a.backend == "llm" && a.model.empty() && !std::filesystem::exists(default_llm()))
    fail(ErrorCode::Usage, "no -m/--model given and the embedded LLM {} is missing (bash scripts/fetch-assets.sh fetches it)",
         default_llm().string());
  generate::Shard shard = generate::parse_shard(a.shard);
  // Under a launcher (torchrun, Slurm) every rank runs this same command line: each takes shard
  // RANK/WORLD_SIZE and its own output file, and `chains merge` joins them.
  const auto env = dist::launch_env();
  RANKEMB_CHECK(!env || env->world_size == 1 || a.shard.empty(), ErrorCode::Usage,
                "--shard under a launcher (WORLD_SIZE={}) would make every rank write {}; leave --shard out: each "
                "rank takes shard RANK/WORLD_SIZE by itself", env ? env->world_size : 1, a.output);
  if (env && env->world_size > 1) {
    shard = {static_cast<std::size_t>(env->rank), static_cast<std::size_t>(env->world_size)};
    a.output = dist::rank_output_path(a.output, env->rank);
    log::info("rank {} of {}: shard {} -> {}", env->rank, env->world_size, generate::format_shard(shard), a.output);
  }
  // Checked before a model is loaded, so a forgotten flag costs nothing.
  if (std::filesystem::exists(a.output) && !a.resume && !a.overwrite)
    fail(ErrorCode::Usage, "{} exists; pass --resume to continue it or --overwrite to replace it", a.output);
  io::check_not_an_input(a.output, {a.seeds, a.prompt, a.copy_prompt, a.model});
  const generate::SeedFile seed_file = generate::read_seeds(a.seeds);
  std::optional<std::size_t> limit;
  if (a.limit >= 0) limit = static_cast<std::size_t>(a.limit);
  const auto seeds = generate::select_seeds(seed_file.seeds, limit, shard);
  log::info("{}: {} seeds, {} selected (shard {}{})", a.seeds, seed_file.seeds.size(), seeds.size(),
            generate::format_shard(shard), limit ? fmt::format(", limit {}", *limit) : "");

  generate::RunOptions options;
  options.steps = a.steps;
  options.output = a.output;
  options.resume = a.resume;
  options.overwrite = a.overwrite;
  generate::set_seed_file(options, seed_file);
  options.shard = shard;
  options.limit = limit;
  const std::string prompt = apply_preset(a, a.prompt.empty() ? std::string() : io::read_file(a.prompt));
  options.retries = a.retries;
  if (!a.drift_guard.empty() && a.retries == 0)
    fail(ErrorCode::Usage, "the drift guard ({}) retries steps: it needs --retries > 0 (--preset small-llm sets {}); "
         "--drift-guard none turns it off", a.drift_guard, llm::small_model_recipe().retries);
  if (a.drift_guard.empty() && a.set_drift_bounds)
    fail(ErrorCode::Usage, "--drift-margin and --drift-max-drop bound the drift guard, which is off; give --drift-guard ENCODER");
  const std::string copy_prompt = a.copy_prompt.empty() ? std::string() : io::read_file(a.copy_prompt);
  options.settings = backend_settings(a, prompt, copy_prompt);

  // The drift guard's encoder, loaded before the LLM so that a wrong path fails fast.
  std::unique_ptr<models::SentenceEncoder> guard_encoder;
  if (!a.drift_guard.empty()) {
    guard_encoder = load_chosen_encoder({.model = a.drift_guard, .dtype = a.dtype});
    options.drift_guard = drift_guard(*guard_encoder, a.drift_guard, a.drift_margin, a.drift_max_drop);
    log::info("drift guard {}: retry when cos(output, seed) leaves [cos(current, seed) - {}, + {}]", a.drift_guard,
              a.drift_max_drop, a.drift_margin);
  }
  const auto backend = make_backend(a, prompt, copy_prompt);
  std::unique_ptr<Progress> progress = make_progress();
  const generate::RunSummary summary = generate::run_chains(*backend, seeds, options, *progress);
  std::cout << a.output << ": " << generate::format_run_summary(summary) << '\n';
  std::cout.flush();
  return 0;
}
}  // namespace

void register_generate(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = root.add_subcommand("generate", "Generate ranking chains whose meaning drifts step by step from each seed");
  cmd->add_option("--backend", a->backend, "llm (a local decoder) or lexical (offline: WordNet + GloVe edits)")->check(CLI::IsMember({"llm", "lexical"}));
  cmd->add_option("-m,--model", a->model,
                  "Decoder: a GGUF file or a Hugging Face directory (Llama/SmolLM/Mistral/Qwen2/Qwen3; default: the embedded "
                  "SmolLM2-135M-Instruct GGUF)");
  cmd->add_option("--seeds", a->seeds, "Seed sentences, one per line")->required();
  cmd->add_option("-o,--output", a->output, "Output JSONL, one chain per line")->required();
  cmd->add_option("--steps", a->steps, "Sentences generated per chain (n)");
  cmd->add_option("--preset", a->preset,
                  "auto (small-llm for the embedded SmolLM2, paper for a model given with -m), paper (the paper's loop) or "
                  "small-llm (a short prompt, --negative auto, --guidance 2, --retries 6, --max-new-tokens 48, the drift guard "
                  "with the embedded teacher, --drift-margin 0.05, --drift-max-drop 0.2; options given explicitly win)")
      ->check(CLI::IsMember({"auto", "paper", "small-llm"}));
  auto* guidance = cmd->add_option("--guidance", a->guidance, "Guidance scale g (1 = unconstrained)")
      ->check(CLI::Validator(
          [](std::string& v) {
            char* end = nullptr;
            const double g = std::strtod(v.c_str(), &end);
            return end != v.c_str() && *end == '\0' && std::isfinite(g) ? std::string() : "must be a finite number";
          },
          "FINITE"));
  auto* max_new = cmd->add_option("--max-new-tokens", a->max_new_tokens, "Token limit per generated sentence");
  cmd->add_option("--batch", a->batch, "Chains decoded together (continuous batching)")
      ->check(in_range(1, static_cast<int>(generate::kMaxBatch)));
  cmd->add_option("--prompt", a->prompt, "Prompt template file with {sentence} (default: the paper's prompt)");
  cmd->add_option("--chat-template", a->chat_template, "auto, llama3, chatml or none")->check(CLI::IsMember({"auto", "llama3", "chatml", "none"}));
  cmd->add_option("--temperature", a->temperature, "0 = greedy");
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling threshold");
  cmd->add_option("--seed", a->seed, "Random seed");
  auto* negative = cmd->add_option("--negative", a->negative,
                  "What guidance steers away from: previous (the paper: the previous sentence), copy (a verbatim copy of the "
                  "current one) or auto (copy when previous == current, else previous; for small models)")
      ->check(CLI::IsMember({"previous", "copy", "auto"}));
  cmd->add_option("--copy-prompt", a->copy_prompt, "Prompt template file with {sentence} for the copy negative (default: built in)");
  auto* retries = cmd->add_option("--retries", a->retries,
                  "Copy guard: retry a step whose output repeats the chain or has a newline, up to N times (0 = off, the paper)")
      ->check(in_range(0, generate::kMaxRetries));
  cmd->add_option("--retry-temperature", a->retry_temperature, "Sampling temperature of the copy guard's retries")->check(non_negative());
  cmd->add_option("--drift-guard", a->drift_guard,
                  "Encoder directory (e.g. the training teacher; not the judge of the chains): also retry a step whose output "
                  "is more similar to the seed than the sentence it rewrote, or far less (--drift-max-drop); when every attempt "
                  "fails, the one least outside the band it refused is kept (needs --retries > 0; runs on the CPU). "
                  "small-llm: the embedded teacher; none = off");
  auto* drift_margin = cmd->add_option("--drift-margin", a->drift_margin,
                  "Drift guard: retry when cos(output, seed) > cos(current, seed) + this (default 0.05)")->check(CLI::Range(-2.0, 2.0));
  auto* drift_max_drop = cmd->add_option("--drift-max-drop", a->drift_max_drop,
                  "Drift guard: also retry when cos(output, seed) < cos(current, seed) - this (default 0.2; 2 = never)")
      ->check(CLI::Range(1e-6, generate::kNoMaxDrop));
  cmd->add_flag("--no-prefix-cache", a->no_prefix_cache, "Recompute the shared prompt prefix for every stream (for measuring)");
  cmd->add_option("--shard", a->shard,
                  "i/N: process only the seeds with id % N == i (merge with 'rankemb chains merge'). Under torchrun or "
                  "any launcher that sets RANK/WORLD_SIZE, each rank takes shard RANK/WORLD_SIZE by itself and writes "
                  "-o with its rank before the extension (or in place of {rank})");
  cmd->add_option("--limit", a->limit, "Use only the first N seeds of the file (-1 = all)")->check(in_range(-1LL, static_cast<long long>(1) << 62));
  cmd->add_option("--vectors", a->vectors, "lexical: GloVe directory from 'rankemb convert glove' (default: <cache>/models/glove-100d)");
  cmd->add_option("--wordnet", a->wordnet, "lexical: WordNet 3.0 dict directory (Debian wordnet-base)");
  add_dtype_option(cmd, a->dtype, "float32 or bfloat16 (LLM weights and compute)");
  add_device_option(cmd, a->device);
  cmd->add_flag("--resume", a->resume, "Continue an interrupted run without losing or duplicating chains");
  cmd->add_flag("--overwrite", a->overwrite, "Replace an existing output");
  cmd->callback([=, &rc] {
    a->set_guidance = guidance->count() > 0;
    a->set_negative = negative->count() > 0;
    a->set_retries = retries->count() > 0;
    a->set_max_new_tokens = max_new->count() > 0;
    a->set_drift_bounds = drift_margin->count() + drift_max_drop->count() > 0;
    rc = run_generate(*a);
  });
}

}  // namespace rankemb::cli
