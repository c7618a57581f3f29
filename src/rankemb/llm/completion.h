// rankemb::llm TextCompleter: text completions of any prompt with the stage-1 guided decoder
// (guided_decoder.h), for `rankemb serve`'s OpenAI-shaped /v1/completions. A prompt is raw text
// (OpenAI's completions are), or one user turn through the model's chat template when asked;
// guidance steers away from a negative prompt rendered the same way:
//   score = logp_neg + g * (logp_pos - logp_neg)
// so g = 1 (or no negative prompt) is plain decoding. The prompts of one call are decoded
// together; each samples from its own RNG stream of (seed, its index), so a prompt's completion
// does not depend on the others.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rankemb/llm/prompt_renderer.h"

namespace rankemb::models {
class CausalLm;
}

namespace rankemb::llm {

struct CompletionOptions {
  std::string negative_prompt;  // steered away from when guidance != 1; "" = none
  double guidance = 1.0;        // g
  int max_tokens = 16;          // generated tokens per prompt, stop token included
  double temperature = 1.0;     // 0 = greedy
  double top_p = 1.0;
  std::uint64_t seed = 0;
  // The text ends before the first occurrence of any of these, which is left out (OpenAI's stop).
  std::vector<std::string> stop;
  bool chat = false;  // prompts as one user turn through the chat template, not raw text
};

struct Completion {
  std::string text;                // decoded as generated (not stripped), without stop token or string
  bool hit_token_limit = false;    // OpenAI's finish_reason "length" (else "stop")
  std::size_t prompt_tokens = 0;   // of the positive prompt
  std::size_t completion_tokens = 0;
};

class TextCompleter {
 public:
  // `model` (with a tokenizer; Error(ModelFormat) otherwise), where it came from (for its own chat
  // template) and the chat template of "chat" prompts (PromptRenderer: auto, llama3, chatml or
  // none). Calls are not thread-safe, and a completion owns the model's slots while it runs.
  TextCompleter(std::shared_ptr<models::CausalLm> model, const std::filesystem::path& model_path,
                std::string_view chat_template = "auto");

  // The ids the model is fed for `prompt`.
  std::vector<std::int64_t> prompt_ids(std::string_view prompt, bool chat) const;
  bool has_chat_template() const { return prompts_.has_chat_template(); }
  // One completion per prompt, in order. Throws Error(Usage) for invalid options or an empty
  // prompt list, Error(Input) for a prompt that tokenizes to nothing.
  std::vector<Completion> complete(const std::vector<std::string>& prompts, const CompletionOptions& options);

 private:
  std::shared_ptr<models::CausalLm> model_;
  const text::Tokenizer* tokenizer_ = nullptr;
  PromptRenderer prompts_;
};

// The first index where any of `stop` (non-empty strings) occurs in `text`; npos when none does.
std::size_t find_stop(std::string_view text, const std::vector<std::string>& stop);

}  // namespace rankemb::llm
