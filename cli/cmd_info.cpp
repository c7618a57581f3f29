// rankemb info: what a model directory (or one .safetensors or GGUF file) holds: architecture and key
// config fields, tokenizer, tensor count, parameters by dtype. Output is JSON on stdout. A model
// directory is checked the way encode/generate would use it: the tokenizer files present must
// load, and the weights are loaded through the encoder or decoder loader, which checks every
// tensor against the config (exit 4 naming the file and tensor otherwise).
#include <filesystem>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "rankemb/io/ggml_quants.h"
#include "rankemb/io/gguf.h"
#include "rankemb/io/safetensors.h"
#include "rankemb/models/causal_lm.h"
#include "rankemb/models/config.h"
#include "rankemb/models/encoder.h"
#include "rankemb/models/gguf_checkpoint.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/error.h"

namespace rankemb::cli {

namespace {

namespace fs = std::filesystem;

nlohmann::json describe_weights(const fs::path& file) {
  auto st = io::SafetensorsFile::open(file);
  std::map<std::string, std::int64_t> params_by_dtype;
  std::int64_t total = 0;
  for (const auto& t : st.tensors()) {
    params_by_dtype[std::string(io::dtype_name(t.dtype))] += t.numel();
    total += t.numel();
  }
  nlohmann::json j;
  j["file"] = file.string();
  j["tensors"] = st.tensors().size();
  j["parameters"] = total;
  j["parameters_by_dtype"] = params_by_dtype;
  j["metadata"] = st.metadata();
  return j;
}

// A metadata value as JSON; long arrays (vocabularies, merges) are summarized, not dumped.
nlohmann::json describe_value(const io::GgufValue& v) {
  switch (v.type) {
    case io::GgufType::String: return v.string;
    case io::GgufType::Bool: return v.integer != 0;
    case io::GgufType::F32: case io::GgufType::F64: return v.real;
    case io::GgufType::Array:
      if (v.array_size() > 16) return fmt::format("[{} x {}]", v.array_size(), io::gguf_type_name(v.element_type));
      if (v.element_type == io::GgufType::String) return v.strings;
      return v.numbers;
    default: return v.integer;
  }
}

// A GGUF file: header, metadata, tensors by ggml type, the Hugging Face config it stands for,
// its tokenizer; then the whole decoder is loaded (every tensor dequantized and checked).
nlohmann::json describe_gguf(const fs::path& path) {
  const auto file = io::GgufFile::open(path);
  std::map<std::string, std::int64_t> params_by_type, tensors_by_type;
  std::int64_t total = 0;
  for (const auto& t : file.tensors()) {
    const std::string type = io::ggml_type_name(t.type);
    params_by_type[type] += t.numel();
    tensors_by_type[type] += 1;
    total += t.numel();
  }
  nlohmann::json metadata = nlohmann::json::object();
  for (const auto& [key, value] : file.metadata()) metadata[key] = describe_value(value);
  nlohmann::json out;
  out["format"] = fmt::format("GGUF v{}", file.version());
  out["weights"] = {{"file", path.string()},          {"bytes", file.file_bytes().size()}, {"tensors", file.tensors().size()},
                    {"parameters", total},            {"parameters_by_type", params_by_type},
                    {"tensors_by_type", tensors_by_type}, {"alignment", file.alignment()}};
  out["metadata"] = std::move(metadata);
  if (file.tensors().empty()) {
    // A vocabulary-only file (llama.cpp's ggml-vocab-*.gguf, --vocab-only conversions): the
    // tokenizer is all there is to check, whatever the architecture.
    const auto tok = text::load_gguf_tokenizer(file);
    out["tokenizer"] = {{"kind", tok->kind()}, {"vocab_size", tok->vocab_size()}, {"model", file.string("tokenizer.ggml.model").value_or("")},
                        {"pre", file.string("tokenizer.ggml.pre").value_or("default")}};
    out["checked"] = "metadata and tokenizer (a vocabulary-only file: no tensors)";
    return out;
  }
  const nlohmann::json config = models::gguf_config_json(file);
  out["model_type"] = config["model_type"];
  out["config"] = config;
  const auto lm = models::load_causal_lm(path);  // the tokenizer comes with it, built once
  out["tokenizer"] = {{"kind", lm->tokenizer()->kind()}, {"vocab_size", lm->tokenizer()->vocab_size()},
                      {"model", file.string("tokenizer.ggml.model").value_or("")}, {"pre", file.string("tokenizer.ggml.pre").value_or("default")}};
  out["checked"] = "metadata, tokenizer and every tensor dequantize and load";
  return out;
}

// null when the directory has no tokenizer files; a broken one is an error, not a JSON note.
nlohmann::json describe_tokenizer(const fs::path& dir) {
  const bool any = fs::exists(dir / "tokenizer.json") || fs::exists(dir / "vocab.txt") || fs::exists(dir / "vocab.json") ||
                   fs::exists(dir / "encoder.json");
  if (!any) return nullptr;
  auto tok = text::load_tokenizer(dir);
  return {{"kind", tok->kind()}, {"vocab_size", tok->vocab_size()}};
}

int run_info(const std::string& path_str) {
  fs::path path(path_str);
  nlohmann::json out;
  if (io::GgufFile::has_magic(path)) {
    out = describe_gguf(path);
  } else if (fs::is_regular_file(path) && path.extension() == ".safetensors") {
    out["weights"] = describe_weights(path);
  } else {
    if (!fs::is_directory(path)) fail(ErrorCode::ModelFormat, "{}: not a model directory, .safetensors or GGUF file", path_str);
    auto cfg = models::load_hf_config(path);
    out["model_type"] = cfg.model_type;
    out["config"] = {{"vocab_size", cfg.vocab_size},
                     {"hidden_size", cfg.hidden_size},
                     {"num_hidden_layers", cfg.num_hidden_layers},
                     {"num_attention_heads", cfg.num_attention_heads},
                     {"intermediate_size", cfg.intermediate_size}};
    if (cfg.is_decoder()) out["config"]["num_key_value_heads"] = cfg.num_key_value_heads;
    out["tokenizer"] = describe_tokenizer(path);
    if (fs::exists(path / "model.safetensors")) out["weights"] = describe_weights(path / "model.safetensors");
    else if (fs::exists(path / "model.safetensors.index.json")) out["weights"] = {{"index", (path / "model.safetensors.index.json").string()}};
    // Config against weights: the loaders require every tensor with its config-given shape.
    if (cfg.is_decoder()) (void)models::load_causal_lm(path);
    else (void)models::load_encoder(path);
    out["checked"] = "config, tokenizer and every weight tensor load";
  }
  std::cout << out.dump(2) << '\n';
  return 0;
}

}  // namespace

void register_info(CLI::App& root, ExitCode& rc) {
  auto model = std::make_shared<std::string>();
  auto* cmd = root.add_subcommand("info", "Describe a model directory, .safetensors or GGUF file (JSON on stdout)");
  cmd->add_option("model", *model, "Model directory, .safetensors file or .gguf file")->required();
  cmd->callback([model, &rc] { rc = run_info(*model); });
}

}  // namespace rankemb::cli
