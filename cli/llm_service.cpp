#include "llm_service.h"

#include <filesystem>
#include <memory>
#include <optional>

#include "cli.h"
#include "model_service.h"
#include "rankemb/chains/record.h"
#include "rankemb/generate/chain_runner.h"
#include "rankemb/generate/seeds.h"
#include "rankemb/llm/completion.h"
#include "rankemb/llm/llm_generator.h"
#include "rankemb/models/causal_lm.h"
#include "rankemb/models/device.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"

namespace rankemb::cli {

namespace fs = std::filesystem;

namespace {

// auto: the small-model loop for the embedded SmolLM2, as `rankemb generate` runs it without -m;
// the paper's loop for any other model.
std::string resolve_preset(const LlmChoice& c) {
  if (c.preset != "auto") return c.preset;
  std::error_code ec;
  return fs::equivalent(c.model, default_llm(), ec) ? "small-llm" : "paper";
}

std::vector<serve::CompletionChoice> complete(llm::TextCompleter& completer, const serve::CompletionRequest& r) {
  const llm::CompletionOptions o{.negative_prompt = r.negative_prompt,
                                 .guidance = r.guidance_scale,
                                 .max_tokens = static_cast<int>(r.max_tokens),
                                 .temperature = r.temperature,
                                 .top_p = r.top_p,
                                 .seed = r.seed,
                                 .stop = r.stop,
                                 .chat = r.chat};
  std::vector<serve::CompletionChoice> out;
  for (llm::Completion& c : completer.complete(r.prompts, o))
    out.push_back({std::move(c.text), c.hit_token_limit, c.prompt_tokens, c.completion_tokens});
  return out;
}

// The seed as `rankemb generate` reads a seed line (stripped, the same checks), with the request's id.
generate::Seed request_seed_sentence(const serve::ChainRequest& r) {
  std::vector<generate::Seed> seeds;
  try {
    seeds = generate::parse_seeds(r.seed, "seed");
  } catch (const Error& e) {
    throw serve::ApiError(400, e.message(), "seed");
  }
  if (seeds.size() != 1) throw serve::ApiError(400, "seed must be one sentence (it is blank)", "seed");
  seeds[0].id = r.id;
  return seeds[0];
}

// One chain through generate's loop and the LLM backend it builds, with the preset's settings
// and what the request overrides: the record `rankemb generate` writes for this seed and id.
std::string chain(const std::shared_ptr<models::CausalLm>& model, const LlmChoice& c, const llm::ChainPreset& preset,
                  const std::optional<generate::DriftGuard>& guard, const serve::ChainRequest& r) {
  const generate::Seed seed = request_seed_sentence(r);
  llm::LlmGeneratorOptions o = preset.generator;
  o.model_dir = c.model;
  o.batch = 1;
  o.chat_template = c.chat_template;
  o.dtype = c.dtype;
  if (r.guidance_scale) o.guidance = *r.guidance_scale;
  if (r.max_tokens) o.max_new_tokens = static_cast<int>(*r.max_tokens);
  o.temperature = r.temperature;
  o.top_p = r.top_p;
  o.seed = r.random_seed;
  auto backend = llm::make_llm_generator(model, o);
  const auto records = generate::chain_records(*backend, {seed}, static_cast<int>(r.steps), preset.retries, guard);
  return chains::format_chain_record(records.at(0));
}

}  // namespace

void add_llm_options(CLI::App* cmd, LlmChoice& c) {
  cmd->add_option("--llm", c.model,
                  "Decoder for POST /v1/completions and /v1/chains: a GGUF file or Hugging Face directory (what 'rankemb "
                  "generate -m' takes; the embedded one is .cache/assets/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf)");
  // --dtype is the encoder's; the two models may well want different ones.
  cmd->add_option_function<std::string>("--llm-dtype", [&c](const std::string& name) { c.dtype = parse_dtype_option(name, "--llm-dtype"); },
                                        "LLM weights and compute: float32 or bfloat16")
      ->check(CLI::IsMember({"float32", "bfloat16"}))
      ->default_str(std::string(dtype_name(c.dtype)));
  cmd->add_option_function<std::string>(
         "--llm-device", [&c](const std::string& name) { c.device = parse_device(name, "--llm-device"); },
         "Where the LLM runs: cpu, cuda or cuda:N (--device is the encoder's)")
      ->default_str(device_name(c.device));
  cmd->add_option("--preset", c.preset,
                  "/v1/chains settings, as 'rankemb generate --preset': auto (small-llm for the embedded SmolLM2, else "
                  "paper), paper or small-llm")
      ->check(CLI::IsMember({"auto", "paper", "small-llm"}));
  cmd->add_option("--drift-guard", c.drift_guard,
                  "/v1/chains: the drift guard's encoder, as 'rankemb generate --drift-guard' (small-llm: the embedded "
                  "teacher; none = off)");
  cmd->add_option("--chat-template", c.chat_template,
                  "Chat template of chain prompts and of completions with \"chat\": true: auto, llama3, chatml or none")
      ->check(CLI::IsMember({"auto", "llama3", "chatml", "none"}));
  cmd->add_option("--max-context", c.max_context,
                  "Tokens one LLM sequence may hold, prompt + completion (capped by the model's own)")
      ->check(in_range(64, 1 << 20));
}

serve::TextModel load_text_model(const LlmChoice& c) {
  std::shared_ptr<models::CausalLm> model;
  try {
    model = models::load_causal_lm(c.model, {.dtype = c.dtype, .device = models::torch_device(c.device)});
  } catch (Error& e) {
    throw e.with_context("loading --llm " + c.model);
  }
  auto completer = std::make_shared<llm::TextCompleter>(model, c.model, c.chat_template);
  const std::string preset_name = resolve_preset(c);
  const llm::ChainPreset preset = llm::chain_preset(preset_name);
  serve::TextModel m;
  m.id = llm::model_name(c.model);
  m.preset = preset_name;
  const auto own = model->config().max_position_embeddings;
  m.context_tokens = own > 0 ? std::min<std::size_t>(c.max_context, static_cast<std::size_t>(own)) : c.max_context;
  m.has_chat_template = completer->has_chat_template();
  m.count_prompt_tokens = [completer](const std::string& prompt, bool chat) {
    return completer->prompt_ids(prompt, chat).size();
  };
  m.complete = [completer](const serve::CompletionRequest& r) { return complete(*completer, r); };
  // The drift guard, with the recipe's bounds (as generate runs it without --drift-margin/-max-drop).
  std::shared_ptr<models::SentenceEncoder> guard_encoder;
  std::optional<generate::DriftGuard> guard;
  if (const std::string encoder = drift_guard_encoder(c.drift_guard, preset_name == "small-llm"); !encoder.empty()) {
    RANKEMB_CHECK(preset.retries > 0, ErrorCode::Usage, "--drift-guard retries chain steps: it needs --preset small-llm");
    guard_encoder = load_chosen_encoder({.model = encoder, .dtype = c.dtype});
    const llm::SmallModelRecipe r = llm::small_model_recipe();
    guard = drift_guard(*guard_encoder, encoder, r.drift_margin, r.drift_max_drop);
  }
  m.chain = [model, c, preset, guard_encoder, guard](const serve::ChainRequest& r) {
    return chain(model, c, preset, guard, r);
  };
  log::info("llm {}: {}, context {} tokens, chains with preset {}{}", m.id, dtype_name(c.dtype), m.context_tokens,
            preset_name, guard ? ", drift guard " + guard->model : "");
  return m;
}

}  // namespace rankemb::cli
