// rankemb::models HfConfig: a typed view of a Hugging Face config.json for the architectures we
// build (BERT, RoBERTa, MPNet, Llama, Mistral, Qwen2, Qwen3) and our own "use-lite" encoder. Missing
// fields get the defaults of the matching transformers config class, so a config that loads in
// transformers means the same here; wrong JSON types and unsupported model types or RoPE variants
// are Error(ModelFormat) naming the file and field. No libtorch here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace rankemb::models {

enum class RopeType {
  Default,  // plain RoPE (also rope_type "default")
  Linear,   // positions divided by factor
  Llama3,   // Llama 3.1 frequency-dependent scaling
};

struct RopeScaling {
  RopeType type = RopeType::Default;
  double factor = 1.0;  // Linear and Llama3
  // Llama3 only (all required there, as transformers requires them).
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  std::int64_t original_max_position_embeddings = 0;
};

struct HfConfig {
  std::string model_type;                  // "bert", "roberta", "mpnet", "llama", "mistral", "qwen2", "qwen3", "use-lite"
  std::vector<std::string> architectures;  // e.g. {"BertModel"}; empty when absent

  // Shared by every family.
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t max_position_embeddings = 0;
  std::string hidden_act;                 // "gelu", "silu", "relu", ...
  std::optional<std::int64_t> pad_token_id;
  std::vector<std::int64_t> bos_token_ids;  // config value is an int or a list; empty when null
  std::vector<std::int64_t> eos_token_ids;
  bool tie_word_embeddings = false;
  std::string torch_dtype;  // "float32", "bfloat16", ...; "" when absent ("dtype" in newer files)
  double initializer_range = 0.02;  // std of freshly initialized weights (transformers' default 0.02)

  // Encoders (BERT, RoBERTa, MPNet, USE-Lite).
  std::int64_t type_vocab_size = 0;     // 0 for families without token types
  double layer_norm_eps = 0;
  std::string position_embedding_type;  // "absolute", "relative_key", "relative_key_query"; "relative" for MPNet
  double hidden_dropout_prob = 0;           // BERT/RoBERTa dropout, used in train() mode only
  double attention_probs_dropout_prob = 0;
  std::int64_t relative_attention_num_buckets = 0;  // MPNet's relative position bias table (32)

  // Decoders (Llama, Mistral, Qwen2, Qwen3).
  std::int64_t num_key_value_heads = 0;
  std::int64_t head_dim = 0;  // also set for encoders: hidden_size / num_attention_heads
  double rms_norm_eps = 0;
  double rope_theta = 0;
  RopeScaling rope_scaling;
  bool attention_bias = false;  // the config key (Llama, Qwen3); see qkv_bias / o_proj_bias
  bool qkv_bias = false;        // q/k/v projections have bias (Qwen2 always; Llama/Qwen3 = attention_bias)
  bool o_proj_bias = false;     // output projection has bias (Llama/Qwen3 = attention_bias; Qwen2 never)
  bool mlp_bias = false;        // Llama's mlp_bias
  bool qk_norm = false;         // per-head RMSNorm on q and k (Qwen3)
  std::optional<std::int64_t> sliding_window;  // parsed for completeness; not used by our kernels

  // USE-Lite ("use-lite", written by `rankemb convert use-lite`; see models/arch/use_lite.cpp):
  // token embeddings are embedding_size wide (256), layer 0 attends at that width and projects the
  // stream to hidden_size (512), and a tanh layer maps the mean-pooled state to output_dim (512).
  // max_position_embeddings is the graph's clip length (128); there is no position table.
  std::int64_t embedding_size = 0;
  std::int64_t output_dim = 0;

  bool is_decoder() const;  // the registry (registry.h) lists model_type as a decoder
};

// Parses a config.json document; `origin` (the file) is named in every error.
HfConfig parse_hf_config(const nlohmann::json& config, std::string_view origin);
// Reads `path`, or `path`/config.json when it is a directory.
HfConfig load_hf_config(const std::filesystem::path& path);
// The initializer_range of `model_dir`/config.json; 0.02 (transformers' default) without one.
double initializer_range(const std::filesystem::path& model_dir);

}  // namespace rankemb::models
