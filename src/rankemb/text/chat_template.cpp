#include "rankemb/text/chat_template.h"

#include <system_error>

#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/io/gguf.h"
#include "rankemb/text/jinja.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::text {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Meta-Llama-3 Instruct: every message is
// "<|start_header_id|>" role "<|end_header_id|>\n\n" trim(content) "<|eot_id|>", the first one
// prefixed with bos_token; then the assistant header.
std::string render_llama3(std::string_view user, const ChatOptions& options, std::string_view bos_token) {
  auto turn = [](std::string& out, std::string_view role, std::string_view content) {
    out += "<|start_header_id|>";
    out += role;
    out += "<|end_header_id|>\n\n";
    out += unicode::python_strip(content);
    out += "<|eot_id|>";
  };
  std::string out(bos_token);
  if (!options.system.empty()) turn(out, "system", options.system);
  turn(out, "user", user);
  out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// Qwen3: contents verbatim; enable_thinking=false adds an empty think block to the generation
// prompt (the template only checks `enable_thinking is false`, so true and undefined agree).
std::string render_chatml(std::string_view user, const ChatOptions& options) {
  std::string out;
  if (!options.system.empty()) {
    out += "<|im_start|>system\n";
    out += options.system;
    out += "<|im_end|>\n";
  }
  out += "<|im_start|>user\n";
  out += user;
  out += "<|im_end|>\n<|im_start|>assistant\n";
  if (!options.enable_thinking) out += "<think>\n\n</think>\n\n";
  return out;
}

// The tokenizer_config.json fields a GGUF model carries in its metadata: chat_template
// (tokenizer.chat_template), bos_token and eos_token (the tokens tokenizer.ggml.*_token_id name).
json gguf_tokenizer_config(const fs::path& path, fs::path& file) {
  const auto gguf = io::GgufFile::open(path);
  file = path;
  json cfg = json::object();
  if (auto t = gguf.string("tokenizer.chat_template")) cfg["chat_template"] = *t;
  const auto* tokens = gguf.strings("tokenizer.ggml.tokens");
  auto name = [&](const char* key, const char* field) {
    auto id = gguf.integer(key);
    if (tokens && id && *id >= 0 && static_cast<std::size_t>(*id) < tokens->size()) cfg[field] = (*tokens)[*id];
  };
  name("tokenizer.ggml.bos_token_id", "bos_token");
  name("tokenizer.ggml.eos_token_id", "eos_token");
  return cfg;
}

// tokenizer_config.json for a model directory or the file itself (or a GGUF model's metadata); nullopt when a directory has
// none. Any failure to read or parse it is a model-format problem of that file.
std::optional<json> read_tokenizer_config(const fs::path& model_dir, fs::path& file) {
  std::error_code ec;
  if (io::GgufFile::has_magic(model_dir)) return gguf_tokenizer_config(model_dir, file);
  if (fs::is_regular_file(model_dir, ec)) {
    file = model_dir;
  } else if (fs::is_directory(model_dir, ec)) {
    file = model_dir / "tokenizer_config.json";
    if (!fs::exists(file, ec)) return std::nullopt;
    if (!fs::is_regular_file(file, ec)) fail(ErrorCode::ModelFormat, "{}: not a regular file", file.string());
  } else {
    fail(ErrorCode::ModelFormat, "{}: no such model directory or tokenizer_config.json", model_dir.string());
  }
  json cfg;
  try {
    cfg = io::read_json(file, ErrorCode::ModelFormat);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::ModelFormat) throw;
    throw Error(ErrorCode::ModelFormat, e.what());  // unreadable: same message, model-format code
  }
  if (!cfg.is_object()) fail(ErrorCode::ModelFormat, "{}: expected a JSON object, got {}", file.string(), cfg.type_name());
  return cfg;
}

// The template text; empty when the model has none.
std::string chat_template_text(const json& cfg, const fs::path& file) {
  auto it = cfg.find("chat_template");
  if (it == cfg.end() || it->is_null()) {
    // Newer transformers versions save the template next to the config instead.
    fs::path jinja = file.parent_path() / "chat_template.jinja";
    std::error_code ec;
    if (fs::is_regular_file(jinja, ec)) {
      try {
        return io::read_file(jinja);
      } catch (const Error& e) {
        throw Error(ErrorCode::ModelFormat, e.what());
      }
    }
    return {};
  }
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    // A list of named templates ({"name": "default", "template": ...}, "tool_use", ...): plain
    // prompts use the default one, as transformers does.
    for (const auto& t : *it) {
      if (t.is_object() && t.value("name", json()) == "default") {
        auto tmpl = t.find("template");
        if (tmpl == t.end() || !tmpl->is_string()) {
          fail(ErrorCode::ModelFormat, "{}: chat_template[name=default].template is not a string", file.string());
        }
        return tmpl->get<std::string>();
      }
    }
    fail(ErrorCode::ModelFormat, "{}: chat_template is a list without a {{\"name\": \"default\"}} entry", file.string());
  }
  fail(ErrorCode::ModelFormat, "{}: chat_template is a {}, expected a string or a list of named templates",
       file.string(), it->type_name());
}

// A special-token entry of tokenizer_config.json: a string or {"content": ...}; "" when absent.
std::string special_token(const json& cfg, const char* key, const fs::path& file) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  // Serialized AddedToken: {"content": "<s>", "lstrip": false, ...}.
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  fail(ErrorCode::ModelFormat, "{}: {} is a {}, expected a string or {{\"content\": ...}}", file.string(), key, it->type_name());
}

}  // namespace

std::optional<ModelChatTemplate> load_model_chat_template(const fs::path& model) {
  fs::path file;
  auto cfg = read_tokenizer_config(model, file);
  if (!cfg) return std::nullopt;
  std::string text = chat_template_text(*cfg, file);
  if (text.empty()) return std::nullopt;
  ModelChatTemplate chat;
  chat.tmpl = std::make_shared<const jinja::Template>(jinja::Template::parse(text, file.string() + " chat_template"));
  chat.bos_token = special_token(*cfg, "bos_token", file);
  chat.eos_token = special_token(*cfg, "eos_token", file);
  return chat;
}

std::string render_user_turn(const ModelChatTemplate& chat, std::string_view user, const ChatOptions& options) {
  unicode::require_utf8(user, "chat prompt");
  unicode::require_utf8(options.system, "system message");
  jinja::Value messages = jinja::Value::array();
  if (!options.system.empty()) messages.push_back({{"role", "system"}, {"content", options.system}});
  messages.push_back({{"role", "user"}, {"content", std::string(user)}});
  jinja::Value context = {{"messages", std::move(messages)}, {"add_generation_prompt", true},
                          {"bos_token", chat.bos_token}, {"eos_token", chat.eos_token}};
  if (!options.enable_thinking) context["enable_thinking"] = false;
  return chat.tmpl->render(context);
}

std::string render_user_turn(ChatFormat format, std::string_view user, const ChatOptions& options,
                             std::string_view bos_token) {
  unicode::require_utf8(user, "chat prompt");
  unicode::require_utf8(options.system, "system message");
  switch (format) {
    case ChatFormat::None:
      if (!options.system.empty()) {
        fail(ErrorCode::Usage, "chat format none has no system turn; pick a chat format (llama3, chatml) for a system message");
      }
      return std::string(user);
    case ChatFormat::Llama3:
      return render_llama3(user, options, bos_token);
    case ChatFormat::ChatML:
      return render_chatml(user, options);
  }
  fail(ErrorCode::Other, "unknown chat format {}", static_cast<int>(format));
}

ChatFormat detect_chat_format(const fs::path& model_dir) {
  fs::path file;
  auto cfg = read_tokenizer_config(model_dir, file);
  if (!cfg) return ChatFormat::None;
  std::string tmpl = chat_template_text(*cfg, file);
  if (tmpl.empty()) return ChatFormat::None;
  if (tmpl.find("<|start_header_id|>") != std::string::npos) return ChatFormat::Llama3;
  if (tmpl.find("<|im_start|>") != std::string::npos) return ChatFormat::ChatML;
  fail(ErrorCode::ModelFormat,
       "{}: chat_template is neither Llama-3 (<|start_header_id|>) nor ChatML (<|im_start|>); "
       "choose the format explicitly (chat template none, llama3 or chatml)",
       file.string());
}

std::string chat_bos_token(const fs::path& model_dir) {
  fs::path file;
  auto cfg = read_tokenizer_config(model_dir, file);
  return cfg ? special_token(*cfg, "bos_token", file) : std::string();
}

std::string_view to_string(ChatFormat format) {
  switch (format) {
    case ChatFormat::None: return "none";
    case ChatFormat::Llama3: return "llama3";
    case ChatFormat::ChatML: return "chatml";
  }
  return "unknown";
}

std::optional<ChatFormat> parse_chat_format(std::string_view name) {
  if (name == "auto") return std::nullopt;
  for (ChatFormat f : {ChatFormat::None, ChatFormat::Llama3, ChatFormat::ChatML}) {
    if (name == to_string(f)) return f;
  }
  fail(ErrorCode::Usage, "unknown chat template {:?}; expected none, llama3, chatml or auto", name);
}

}  // namespace rankemb::text
