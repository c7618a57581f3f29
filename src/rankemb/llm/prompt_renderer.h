// rankemb::llm PromptRenderer: how a prompt becomes the token ids a decoder is fed, in one place
// for the chain backend and text completions: either one user turn through the model's chat
// template, or raw text as the tokenizer presents any text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rankemb/text/chat_template.h"

namespace rankemb::text {
class Tokenizer;
}

namespace rankemb::llm {

class PromptRenderer {
 public:
  // `chat_template`: auto (the model's own Jinja template from `model`, a model directory or GGUF
  // file: tokenizer_config.json, chat_template.jinja or GGUF metadata; none when it has none or
  // `model` is empty), or an explicit llama3, chatml or none. `tokenizer` must outlive this.
  // Throws Error(Usage) for an unknown name, Error(ModelFormat) for a template that cannot be parsed.
  PromptRenderer(const text::Tokenizer& tokenizer, std::string_view chat_template, const std::filesystem::path& model);

  // `user` as one user turn followed by the assistant header; the raw text when the format is none.
  std::vector<std::int64_t> user_turn(std::string_view user) const;
  // `text` verbatim, as the tokenizer presents any text to a base model: with the post-processor's
  // prefix (BOS for Llama-style tokenizers), never its suffix (EOS).
  std::vector<std::int64_t> raw(std::string_view text) const;
  // Whether user_turn() applies a chat template (false: it equals raw()).
  bool has_chat_template() const { return model_chat_.has_value() || format_ != text::ChatFormat::None; }

 private:
  std::vector<std::int64_t> encode(const std::string& rendered, bool with_prefix) const;

  const text::Tokenizer& tokenizer_;
  text::ChatFormat format_ = text::ChatFormat::None;    // an explicit format
  std::optional<text::ModelChatTemplate> model_chat_;  // auto with a model template: it wins
  text::ChatOptions chat_options_;
  std::string bos_;
};

}  // namespace rankemb::llm
