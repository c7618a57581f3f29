// Chat templates: turns one user prompt (plus an optional system message) into the text a chat
// model expects, byte for byte what the model's own Jinja chat_template renders for
// apply_chat_template([{"role": "user", "content": ...}], add_generation_prompt=True).
// The default is the model's own template (tokenizer_config.json "chat_template",
// chat_template.jinja, or GGUF tokenizer.chat_template), interpreted by jinja.h: ModelChatTemplate.
// The explicit formats below are written out in C++ and reproduce a reference template each
// (fixtures from scripts/regen/chat_templates.py), for `--chat-template llama3|chatml|none`:
//   Llama3 - Meta-Llama-3 (8B/70B) Instruct: no default system block, contents are trimmed.
//   ChatML - Qwen3: no default system prompt, contents verbatim, optional empty think block.
// Other templates of the same family (Llama-3.1's dated system block, Qwen2.5's default system
// prompt) differ in the system block and are not reproduced.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace rankemb::text {

enum class ChatFormat {
  None,    // base models: the prompt text as is
  Llama3,  // <|start_header_id|>user<|end_header_id|>\n\n ... <|eot_id|>
  ChatML,  // <|im_start|>user\n ... <|im_end|>\n
};

struct ChatOptions {
  // System message; empty = none. The None format has no system turn and rejects one.
  std::string system;
  // Qwen3 thinking: false renders the empty "<think>\n\n</think>\n\n" block after the assistant
  // header, which tells the model to answer without reasoning. Ignored by the other formats.
  bool enable_thinking = true;
};

// The prompt for one user turn followed by the assistant header (the generation prompt).
// `bos_token` is the tokenizer's BOS string (e.g. "<|begin_of_text|>"), which the Llama-3
// template puts in front; tokenize the result with add_special_tokens = false so that it is not
// added twice. ChatML and None ignore it. Throws Error(Input) for invalid UTF-8 in `user` or the
// system message, Error(Usage) for a system message with ChatFormat::None.
std::string render_user_turn(ChatFormat format, std::string_view user, const ChatOptions& options = {},
                             std::string_view bos_token = "");

namespace jinja {
class Template;
}

// A model's own chat template, parsed, with the special-token strings templates use.
struct ModelChatTemplate {
  std::shared_ptr<const jinja::Template> tmpl;
  std::string bos_token, eos_token;  // "" when the model has none
};

// The chat template of `model` (a model directory, its tokenizer_config.json, or a GGUF file);
// nullopt when it has none. Error(ModelFormat) naming the file and construct for a template the
// interpreter cannot parse (never a silent fallback to another format).
std::optional<ModelChatTemplate> load_model_chat_template(const std::filesystem::path& model);

// render_user_turn through the model's own template: messages [system (when options.system is
// set)], user; add_generation_prompt = true; enable_thinking = false passed only when
// options.enable_thinking is false (templates test `enable_thinking is false`).
std::string render_user_turn(const ModelChatTemplate& chat, std::string_view user, const ChatOptions& options = {});

// The format of the chat_template in `model_dir`/tokenizer_config.json (or chat_template.jinja
// next to it; `model_dir` may also be the tokenizer_config.json itself): Llama3 when it contains
// "<|start_header_id|>", ChatML when it contains "<|im_start|>", None when the model has no chat
// template. Throws Error(ModelFormat) naming the file for an unreadable or malformed config and
// for a chat template of neither family.
ChatFormat detect_chat_format(const std::filesystem::path& model_dir);

// The bos_token string of `model_dir`/tokenizer_config.json ("" when it has none), for
// render_user_turn. Throws Error(ModelFormat) like detect_chat_format.
std::string chat_bos_token(const std::filesystem::path& model_dir);

// "none", "llama3", "chatml".
std::string_view to_string(ChatFormat format);

// Parses a --chat-template value: none|llama3|chatml, or auto (nullopt: call detect_chat_format).
// Throws Error(Usage) listing the accepted values otherwise.
std::optional<ChatFormat> parse_chat_format(std::string_view name);

}  // namespace rankemb::text
