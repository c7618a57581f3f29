// rankemb::llm owns the LLM backend of stage 1 (a generate::SentenceGenerator): guided decoding of one chain step with classifier-free
// guidance between two prompts (METHOD.md "Stage 1"), on a models::CausalLm with continuous
// batching at token level. The decoding itself (two streams, the guided score, sampling, slots,
// prompt-prefix reuse) is guided_decoder.h's, shared with text completions; this file turns chain
// steps into its requests.
//
// Per request: positive = prompt(current), negative = prompt(previous) (or, for small models that
// copy their input, a prompt asking to copy the current sentence: LlmGeneratorOptions::negative);
//   score = logp_neg + g * (logp_pos - logp_neg)
// When the two prompts are equal (step 1) or g == 1 only the positive stream runs. Greedy by
// default; with temperature > 0, temperature/top-p sampling from an RNG derived from (seed,
// chain_id, step, attempt) only, so results do not depend on batch composition.
// Prompt prefix reuse: the tokens every prompt starts with (the chat header and the instruction
// before the sentence) are the decoder's shared prefix, computed once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rankemb/generate/sentence_generator.h"
#include "rankemb/llm/guided_decoder.h"
#include "rankemb/text/chat_template.h"
#include "rankemb/util/device.h"
#include "rankemb/util/types.h"

namespace rankemb::models {
class CausalLm;
}

namespace rankemb::llm {

using generate::SentenceGenerator;

struct LlmGeneratorOptions {
  std::filesystem::path model_dir;  // Hugging Face checkpoint directory (make_llm_generator(options))
  std::size_t batch = 16;           // chains in flight (capacity()); 2 * batch model slots
  double guidance = 1.5;            // g; 1 = unguided (one stream per request)
  int max_new_tokens = 100;         // per step, stop token included
  // Prompt text with a "{sentence}" placeholder (every occurrence is replaced by the sentence,
  // stripped of surrounding white space as the authors' code does); empty = the paper's prompt,
  // default_prompt_template().
  std::string prompt_template;
  // auto (the model's own Jinja chat template from model_dir: tokenizer_config.json,
  // chat_template.jinja or GGUF metadata; the raw prompt when it has none or there is no
  // model_dir), or an explicit llama3, chatml or none (the raw prompt, with the tokenizer's BOS
  // when it adds one).
  std::string chat_template = "auto";
  double temperature = 0.0;  // 0 = greedy
  double top_p = 1.0;        // nucleus mass kept when sampling, in (0, 1]
  std::uint64_t seed = 0;    // sampling only
  Dtype dtype = Dtype::Float32;  // model weights/compute
  Device device;                 // where weights and KV caches live (logits come back to the host)
  // What the guidance steers away from (the negative stream's prompt):
  //   previous - prompt(previous sentence), the paper; no guidance when previous == current;
  //   copy     - copy_prompt(current): away from repeating the current sentence verbatim;
  //   auto     - copy when previous == current (step 1, or after a repeated step), else previous.
  std::string negative = "previous";
  // The copy negative's prompt ("{sentence}" placeholder); empty = default_copy_prompt_template().
  std::string copy_prompt_template;
  // Retries of the copy guard (StepRequest::attempt > 0) sample at least this hot, so that a
  // retry can differ from the greedy output it replaces.
  double retry_temperature = 0.8;
  // Reuse the keys/values of the prompt text every request shares (the instruction around the
  // sentence) instead of recomputing them for each stream; off only to measure what it saves.
  bool share_prefix = true;
};

// Loads the model in options.model_dir (models::load_causal_lm) and wraps it. model_name() is the
// directory's name. Throws Error(Usage) for invalid options, Error(ModelFormat) for a model that
// cannot be loaded or has no tokenizer.json.
std::unique_ptr<SentenceGenerator> make_llm_generator(const LlmGeneratorOptions& options);

// Wraps an already loaded model (tests use a fake one). options.model_dir is used only for
// chat_template = "auto" and for the BOS string of the Llama-3 template; when empty, "auto" means
// none and the BOS string comes from the model's tokenizer. `model_name` empty = the directory's
// name, or "causal-lm". The model must have a tokenizer (Error(ModelFormat) otherwise); the
// generator calls model->reserve() and owns all of its slots while it lives.
std::unique_ptr<SentenceGenerator> make_llm_generator(std::shared_ptr<models::CausalLm> model,
                                                      const LlmGeneratorOptions& options,
                                                      std::string model_name = "");

// The name a chain record gives the model at `path`: its directory's (or GGUF file's) name.
std::string model_name(const std::filesystem::path& path);

// The authors' prompt (hly1998/RankingSentenceGeneration, generation/generation.py), verbatim
// with its indentation, "{sentence}" standing for the stripped input sentence.
std::string_view default_prompt_template();

// The copy negative's prompt: asks for the sentence verbatim (see LlmGeneratorOptions::negative).
std::string_view default_copy_prompt_template();

// The loop for small instruction models (SmolLM2-135M-Instruct, the embedded LLM), chosen on dev
// seeds (README "Real LLM chains"): the paper's loop with these values, every one of
// which can still be set on its own. Capable models keep the paper's defaults.
struct SmallModelRecipe {
  std::string_view prompt;          // a short instruction the model follows
  std::string_view negative = "auto";
  double guidance = 2.0;
  int retries = 6;                  // generate::RunOptions::retries (the copy guard)
  int max_new_tokens = 48;          // an SNLI sentence is ~15 tokens; longer outputs are run-ons
  // The drift guard (generate::DriftGuard), with the training teacher as its encoder: a step may
  // move back toward the seed by at most this much cosine, and away from it by at most max_drop.
  double drift_margin = 0.05;
  double drift_max_drop = 0.2;
};
SmallModelRecipe small_model_recipe();

// The chain settings a preset stands for: "paper" is the paper's loop (LlmGeneratorOptions'
// defaults, no copy guard); "small-llm" is small_model_recipe() on top of it. The caller sets
// model_dir and anything it overrides. Throws Error(Usage) naming the accepted values otherwise.
struct ChainPreset {
  LlmGeneratorOptions generator;
  int retries = 0;  // generate::RunOptions::retries
};
ChainPreset chain_preset(std::string_view name);

// The user-turn text for `sentence`: every "{sentence}" in `prompt_template` replaced by the
// sentence stripped of surrounding white space (Python str.strip()). Throws Error(Usage) when the
// template has no placeholder, Error(Input) for invalid UTF-8 in the sentence.
std::string fill_prompt(std::string_view prompt_template, std::string_view sentence);

}  // namespace rankemb::llm
