#include "rankemb/llm/completion.h"

#include <algorithm>

#include "rankemb/llm/guided_decoder.h"
#include "rankemb/models/causal_lm.h"
#include "rankemb/util/error.h"
#include "rankemb/util/types.h"

namespace rankemb::llm {

namespace {

const text::Tokenizer& tokenizer_of(const models::CausalLm* model, const std::filesystem::path& path) {
  RANKEMB_CHECK(model != nullptr, ErrorCode::Usage, "text completer: no model");
  RANKEMB_CHECK(model->tokenizer() != nullptr, ErrorCode::ModelFormat, "{}: text completion needs the model's tokenizer",
                path.string());
  return *model->tokenizer();
}

}  // namespace

TextCompleter::TextCompleter(std::shared_ptr<models::CausalLm> model, const std::filesystem::path& model_path,
                             std::string_view chat_template)
    : model_(std::move(model)), tokenizer_(&tokenizer_of(model_.get(), model_path)),
      prompts_(*tokenizer_, chat_template, model_path) {}

std::vector<std::int64_t> TextCompleter::prompt_ids(std::string_view prompt, bool chat) const {
  return chat ? prompts_.user_turn(prompt) : prompts_.raw(prompt);
}

std::vector<Completion> TextCompleter::complete(const std::vector<std::string>& prompts, const CompletionOptions& o) {
  RANKEMB_CHECK(!prompts.empty(), ErrorCode::Usage, "complete: no prompt");
  for (const auto& s : o.stop) RANKEMB_CHECK(!s.empty(), ErrorCode::Usage, "complete: an empty stop string");
  std::vector<std::int64_t> negative;
  if (!o.negative_prompt.empty()) negative = prompt_ids(o.negative_prompt, o.chat);
  std::vector<DecodeRequest> requests(prompts.size());
  std::vector<std::size_t> prompt_tokens(prompts.size());
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    DecodeRequest& d = requests[i];
    d.positive = prompt_ids(prompts[i], o.chat);
    RANKEMB_CHECK(!d.positive.empty(), ErrorCode::Input, "prompt {} tokenizes to no tokens", i);
    prompt_tokens[i] = d.positive.size();
    d.negative = negative;
    d.guidance = o.guidance;
    d.max_new_tokens = o.max_tokens;
    d.temperature = o.temperature;
    d.top_p = o.top_p;
    d.rng_seed = request_seed(o.seed, i, 0);
    // Stop strings can span tokens, so they are looked for in the text decoded so far.
    if (!o.stop.empty())
      d.stop_after = [this, &o](std::span<const std::int64_t> ids) {
        return find_stop(decode_generated(*tokenizer_, ids), o.stop) != std::string_view::npos;
      };
  }
  GuidedDecoder decoder(model_, {.batch = prompts.size()});
  std::vector<Completion> out;
  for (DecodeResult& r : decoder.run(std::move(requests))) {
    Completion c;
    c.prompt_tokens = prompt_tokens[out.size()];
    c.completion_tokens = r.tokens.size();
    c.hit_token_limit = r.hit_token_limit;
    if (r.stop_token) r.tokens.pop_back();
    c.text = decode_generated(*tokenizer_, r.tokens);
    if (const std::size_t at = find_stop(c.text, o.stop); at != std::string::npos) c.text.resize(at);
    out.push_back(std::move(c));
  }
  return out;
}

std::size_t find_stop(std::string_view text, const std::vector<std::string>& stop) {
  std::size_t first = std::string_view::npos;
  for (const auto& s : stop)
    if (!s.empty()) first = std::min(first, text.find(s));
  return first;
}

}  // namespace rankemb::llm
