#include "rankemb/llm/prompt_renderer.h"

#include "rankemb/text/tokenizer.h"

namespace rankemb::llm {

PromptRenderer::PromptRenderer(const text::Tokenizer& tokenizer, std::string_view chat_template,
                               const std::filesystem::path& model)
    : tokenizer_(tokenizer) {
  if (auto format = text::parse_chat_format(chat_template)) {
    format_ = *format;
  } else if (!model.empty()) {
    // auto: the model's own template, interpreted; a model without one gets the raw prompt.
    model_chat_ = text::load_model_chat_template(model);
  }
  if (format_ == text::ChatFormat::Llama3) {
    if (!model.empty()) {
      bos_ = text::chat_bos_token(model);
    } else if (tokenizer_.special_tokens().bos >= 0) {
      bos_ = tokenizer_.id_to_token(tokenizer_.special_tokens().bos);
    }
  }
  // Qwen3's template needs enable_thinking=false to answer directly; the empty think block it
  // then renders would be foreign text to ChatML models without think tokens (Qwen2.5).
  chat_options_.enable_thinking = !tokenizer_.token_to_id("<think>").has_value();
}

std::vector<std::int64_t> PromptRenderer::user_turn(std::string_view user) const {
  if (model_chat_) return encode(text::render_user_turn(*model_chat_, user, chat_options_), false);
  return encode(text::render_user_turn(format_, user, chat_options_, bos_), format_ == text::ChatFormat::None);
}

std::vector<std::int64_t> PromptRenderer::raw(std::string_view text) const { return encode(std::string(text), true); }

std::vector<std::int64_t> PromptRenderer::encode(const std::string& rendered, bool with_prefix) const {
  text::EncodeOptions enc;
  enc.add_special_tokens = false;  // chat templates carry their own specials (BOS included)
  std::vector<std::int64_t> out;
  if (with_prefix)
    for (text::TokenId id : tokenizer_.post_template().prefix) out.push_back(id);
  for (text::TokenId id : tokenizer_.encode(rendered, enc)) out.push_back(id);
  return out;
}

}  // namespace rankemb::llm
