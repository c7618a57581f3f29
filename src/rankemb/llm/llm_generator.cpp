#include "rankemb/llm/llm_generator.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "rankemb/llm/guided_decoder.h"
#include "rankemb/llm/prompt_renderer.h"
#include "rankemb/models/causal_lm.h"
#include "rankemb/models/device.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::llm {

using namespace generate;

namespace {

// The user message of the authors' generation/generation.py (hly1998/RankingSentenceGeneration,
// commit 3fa466a), the f-string passed as "content" to apply_chat_template: it starts after a
// line continuation, so each of its three lines carries the source file's 28 spaces of
// indentation, the first line ends with a space and the prompt ends with "Result: ". The Llama-3
// template trims the content (as it did for the authors); ChatML keeps it verbatim.
constexpr std::string_view kPaperPrompt =
    "                            Rewrite the following sentence or phrase using different words and sentence "
    "structure while preserving its original meaning. \n"
    "                            Directly answer with the rewritten sentence. Don't give any explanation or "
    "description other than the rewritten sentence.\n"
    "                            Write a sentence that is entailment with: ```{sentence}```. Result: ";

constexpr std::string_view kPlaceholder = "{sentence}";

// The copy negative (LlmGeneratorOptions::negative): what a small model does when it fails the
// paper's instruction. Guidance away from it pushes the output off the verbatim copy.
constexpr std::string_view kCopyPrompt =
    "Repeat the following sentence exactly, word for word, without changing anything. "
    "Directly answer with the sentence.\n"
    "Sentence: ```{sentence}```. Result: ";

// SmallModelRecipe's prompt: the paper's instruction is ~80 tokens of detail a 135M model echoes
// back ("The rewritten sentence is: ..."); this one it follows.
constexpr std::string_view kSmallModelPrompt =
    "Rewrite this sentence using some different words. Reply with the new sentence only.\nSentence: {sentence}";

enum class Negative { Previous, Copy, Auto };

Negative parse_negative(std::string_view name) {
  if (name == "previous") return Negative::Previous;
  if (name == "copy") return Negative::Copy;
  if (name == "auto") return Negative::Auto;
  fail(ErrorCode::Usage, "unknown negative {:?}; expected previous, copy or auto", name);
}


// One RNG seed per request, from (seed, chain_id, step) alone: independent of batch composition.
// A retry (attempt > 0) gets a stream of its own; attempt 0 keeps the stream of earlier versions.
std::uint64_t request_rng_seed(std::uint64_t seed, std::uint64_t chain_id, int step, int attempt) {
  return request_seed(seed, chain_id, step) ^ (static_cast<std::uint64_t>(attempt) * 0x9E3779B97F4A7C15ULL);
}

void validate(const LlmGeneratorOptions& o) {
  RANKEMB_CHECK(o.batch >= 1 && o.batch <= kMaxBatch, ErrorCode::Usage, "batch must be in [1, {}], got {}", kMaxBatch,
                o.batch);
  RANKEMB_CHECK(o.max_new_tokens >= 1, ErrorCode::Usage, "max_new_tokens must be at least 1, got {}", o.max_new_tokens);
  RANKEMB_CHECK(std::isfinite(o.guidance), ErrorCode::Usage, "guidance must be a finite number, got {}", o.guidance);
  RANKEMB_CHECK(std::isfinite(o.temperature) && o.temperature >= 0, ErrorCode::Usage,
                "temperature must be >= 0, got {}", o.temperature);
  RANKEMB_CHECK(o.top_p > 0 && o.top_p <= 1, ErrorCode::Usage, "top_p must be in (0, 1], got {}", o.top_p);
  RANKEMB_CHECK(std::isfinite(o.retry_temperature) && o.retry_temperature >= 0, ErrorCode::Usage,
                "retry temperature must be >= 0, got {}", o.retry_temperature);
  parse_negative(o.negative);
  if (!o.copy_prompt_template.empty())
    RANKEMB_CHECK(o.copy_prompt_template.find(kPlaceholder) != std::string::npos, ErrorCode::Usage,
                  "copy prompt template has no {} placeholder: '{}'", kPlaceholder, o.copy_prompt_template);
  if (!o.prompt_template.empty())
    RANKEMB_CHECK(o.prompt_template.find(kPlaceholder) != std::string::npos, ErrorCode::Usage,
                  "prompt template has no {} placeholder: '{}'", kPlaceholder, o.prompt_template);
  text::parse_chat_format(o.chat_template);
}

class LlmGenerator final : public SentenceGenerator {
 public:
  LlmGenerator(std::shared_ptr<models::CausalLm> model, const LlmGeneratorOptions& options, std::string name)
      : options_(checked(options)), name_(std::move(name)), tokenizer_(tokenizer_of(model.get(), name_)),
        prompts_(*tokenizer_, options_.chat_template, options_.model_dir),
        decoder_(model, {.batch = options_.batch, .shared_prefix = shared_prefix(*model)}) {
    negative_ = parse_negative(options_.negative);
  }

  std::size_t capacity() const override { return decoder_.capacity(); }
  std::size_t pending() const override { return decoder_.pending(); }
  std::string model_name() const override { return name_; }
  double guidance() const override { return options_.guidance; }

  void submit(StepRequest request) override {
    RANKEMB_CHECK(decoder_.pending() < decoder_.capacity(), ErrorCode::Usage,
                  "submit: {} requests already pending (capacity {})", decoder_.pending(), decoder_.capacity());
    DecodeRequest d;
    d.ticket = request.ticket;
    d.positive = prompt_ids(options_.prompt_template, request.current, "current sentence");
    if (auto neg = negative_prompt(request)) d.negative = std::move(*neg);
    d.guidance = options_.guidance;
    d.max_new_tokens = options_.max_new_tokens;
    d.temperature = request.attempt > 0 ? std::max(options_.temperature, options_.retry_temperature) : options_.temperature;
    d.top_p = options_.top_p;
    d.rng_seed = request_rng_seed(options_.seed, request.chain_id, request.step, request.attempt);
    decoder_.submit(std::move(d));
  }

  std::vector<StepResult> poll() override {
    std::vector<StepResult> done;
    for (DecodeResult& d : decoder_.poll()) {
      StepResult r;
      r.ticket = d.ticket;
      r.new_tokens = d.tokens.size();
      r.hit_token_limit = d.hit_token_limit;
      if (d.stop_token) d.tokens.pop_back();
      r.text = strip_generated(decode_generated(*tokenizer_, d.tokens));
      done.push_back(std::move(r));
    }
    return done;
  }

 private:
  // Valid options with the default prompts filled in.
  static LlmGeneratorOptions checked(const LlmGeneratorOptions& o) {
    validate(o);
    LlmGeneratorOptions c = o;
    if (c.prompt_template.empty()) c.prompt_template = std::string(kPaperPrompt);
    if (c.copy_prompt_template.empty()) c.copy_prompt_template = std::string(kCopyPrompt);
    return c;
  }

  static const text::Tokenizer* tokenizer_of(const models::CausalLm* model, const std::string& name) {
    RANKEMB_CHECK(model != nullptr, ErrorCode::Usage, "make_llm_generator: no model");
    RANKEMB_CHECK(model->tokenizer() != nullptr, ErrorCode::ModelFormat,
                  "{}: guided generation needs the model's tokenizer (tokenizer.json)", name);
    return model->tokenizer();
  }

  // The prompt with an empty sentence: every real prompt starts with most of these tokens, which
  // the decoder computes once (when asked to and the model can copy them).
  std::vector<std::int64_t> shared_prefix(const models::CausalLm& model) const {
    if (!options_.share_prefix || !model.can_copy_prefix()) return {};
    return prompt_ids(options_.prompt_template, "", "prompt prefix");
  }

  // The negative stream's prompt, or nothing when guidance cannot act (the paper's negative at a
  // step whose previous sentence is the current one).
  std::optional<std::vector<std::int64_t>> negative_prompt(const StepRequest& r) const {
    if (options_.guidance == 1.0) return std::nullopt;  // the decoder would not run it
    const bool same = r.previous == r.current;
    if (negative_ == Negative::Copy || (negative_ == Negative::Auto && same))
      return prompt_ids(options_.copy_prompt_template, r.current, "current sentence (copy negative)");
    if (same) return std::nullopt;
    return prompt_ids(options_.prompt_template, r.previous, "previous sentence");
  }

  std::vector<std::int64_t> prompt_ids(const std::string& prompt_template, const std::string& sentence,
                                       std::string_view what) const {
    std::vector<std::int64_t> out;
    try {
      out = prompts_.user_turn(fill_prompt(prompt_template, sentence));
    } catch (Error& e) {
      throw e.with_context(fmt::format("submit: {}", what));
    }
    RANKEMB_CHECK(!out.empty(), ErrorCode::Input, "submit: the prompt for the {} tokenizes to no tokens", what);
    return out;
  }

  LlmGeneratorOptions options_;
  std::string name_;
  const text::Tokenizer* tokenizer_ = nullptr;
  PromptRenderer prompts_;
  GuidedDecoder decoder_;
  Negative negative_ = Negative::Previous;
};

}  // namespace

std::string model_name(const std::filesystem::path& path) {
  auto p = path.lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

std::string_view default_prompt_template() { return kPaperPrompt; }

std::string_view default_copy_prompt_template() { return kCopyPrompt; }

SmallModelRecipe small_model_recipe() { return {.prompt = kSmallModelPrompt}; }

ChainPreset chain_preset(std::string_view name) {
  ChainPreset p;
  if (name == "paper") return p;
  RANKEMB_CHECK(name == "small-llm", ErrorCode::Usage, "unknown preset {:?}; expected paper or small-llm", name);
  const SmallModelRecipe r = small_model_recipe();
  p.generator.prompt_template = std::string(r.prompt);
  p.generator.negative = std::string(r.negative);
  p.generator.guidance = r.guidance;
  p.generator.max_new_tokens = r.max_new_tokens;
  p.retries = r.retries;
  return p;
}

std::string fill_prompt(std::string_view prompt_template, std::string_view sentence) {
  RANKEMB_CHECK(prompt_template.find(kPlaceholder) != std::string_view::npos, ErrorCode::Usage,
                "prompt template has no {} placeholder", kPlaceholder);
  unicode::require_utf8(sentence, "sentence");
  const std::string_view stripped = unicode::python_strip(sentence);
  std::string out;
  std::size_t pos = 0;
  while (true) {
    std::size_t at = prompt_template.find(kPlaceholder, pos);
    if (at == std::string_view::npos) break;
    out.append(prompt_template.substr(pos, at - pos));
    out.append(stripped);
    pos = at + kPlaceholder.size();
  }
  out.append(prompt_template.substr(pos));
  return out;
}

std::unique_ptr<SentenceGenerator> make_llm_generator(std::shared_ptr<models::CausalLm> model,
                                                      const LlmGeneratorOptions& options, std::string model_name) {
  if (model_name.empty()) model_name = options.model_dir.empty() ? "causal-lm" : llm::model_name(options.model_dir);
  return std::make_unique<LlmGenerator>(std::move(model), options, std::move(model_name));
}

std::unique_ptr<SentenceGenerator> make_llm_generator(const LlmGeneratorOptions& options) {
  validate(options);
  RANKEMB_CHECK(!options.model_dir.empty(), ErrorCode::Usage, "make_llm_generator: no model directory");
  models::CausalLmOptions lm;
  lm.dtype = options.dtype;
  lm.device = models::torch_device(options.device);
  std::shared_ptr<models::CausalLm> model;
  try {
    model = models::load_causal_lm(options.model_dir, lm);
  } catch (Error& e) {
    throw e.with_context("loading generator model " + options.model_dir.string());
  }
  return make_llm_generator(std::move(model), options, llm::model_name(options.model_dir));
}

}  // namespace rankemb::llm
