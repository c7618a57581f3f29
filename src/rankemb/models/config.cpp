#include "rankemb/models/config.h"

#include <algorithm>
#include <array>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/models/registry.h"
#include "rankemb/util/error.h"

namespace rankemb::models {

namespace {

using nlohmann::json;

// Typed access to one JSON object with errors that name the file and the field. Absent fields
// take the given default or, without one, are a "missing required field" error; JSON null is a
// type error except for the explicitly nullable getters.
class Fields {
 public:
  Fields(const json& j, std::string_view origin, std::string prefix = "")
      : j_(j), origin_(origin), prefix_(std::move(prefix)) {}

  bool present(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  bool contains(const char* key) const { return j_.contains(key); }
  const json& raw(const char* key) const { return j_.at(key); }

  std::int64_t integer(const char* key, std::optional<std::int64_t> fallback = std::nullopt) const {
    const json* v = find(key, fallback.has_value());
    return v ? to_int(*v, key) : *fallback;
  }
  // Absent -> `if_absent`; null -> nullopt.
  std::optional<std::int64_t> nullable_integer(const char* key, std::optional<std::int64_t> if_absent) const {
    if (!j_.contains(key)) return if_absent;
    const json& v = j_.at(key);
    if (v.is_null()) return std::nullopt;
    return to_int(v, key);
  }
  double number(const char* key, std::optional<double> fallback = std::nullopt) const {
    const json* v = find(key, fallback.has_value());
    if (!v) return *fallback;
    if (!v->is_number()) type_error(key, "a number", *v);
    return v->get<double>();
  }
  bool boolean(const char* key, bool fallback) const {
    const json* v = find(key, true);
    if (!v) return fallback;
    if (!v->is_boolean()) type_error(key, "true or false", *v);
    return v->get<bool>();
  }
  std::string string(const char* key, std::optional<std::string> fallback = std::nullopt) const {
    const json* v = find(key, fallback.has_value());
    if (!v) return *fallback;
    if (!v->is_string()) type_error(key, "a string", *v);
    return v->get<std::string>();
  }
  // bos/eos ids: an int, a list of ints, or null (no token).
  std::vector<std::int64_t> token_ids(const char* key, std::optional<std::int64_t> if_absent) const {
    if (!j_.contains(key)) return if_absent ? std::vector<std::int64_t>{*if_absent} : std::vector<std::int64_t>{};
    const json& v = j_.at(key);
    if (v.is_null()) return {};
    if (!v.is_array()) return {to_int(v, key)};
    std::vector<std::int64_t> out;
    for (const auto& x : v) {
      if (!x.is_number_integer()) type_error(key, "an integer or a list of integers", v);
      out.push_back(to_int(x, key));
    }
    return out;
  }

  [[noreturn]] void type_error(const char* key, std::string_view expected, const json& got) const {
    std::string shown = got.dump();
    if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
    fail(ErrorCode::ModelFormat, "{}: field \"{}{}\" must be {}, got {}", origin_, prefix_, key, expected, shown);
  }
  [[noreturn]] void invalid(const char* key, std::string_view why) const {
    fail(ErrorCode::ModelFormat, "{}: field \"{}{}\" {}", origin_, prefix_, key, why);
  }

 private:
  const json* find(const char* key, bool optional) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (optional) return nullptr;
      fail(ErrorCode::ModelFormat, "{}: missing required field \"{}{}\"", origin_, prefix_, key);
    }
    return &*it;
  }
  std::int64_t to_int(const json& v, const char* key) const {
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<std::uint64_t>() > INT64_MAX))
      type_error(key, "an integer", v);
    return v.get<std::int64_t>();
  }

  const json& j_;
  std::string_view origin_;
  std::string prefix_;  // "rope_scaling." inside nested objects
};

RopeScaling parse_rope(const Fields& parent, const char* key, std::string_view origin) {
  const json& r = parent.raw(key);
  if (!r.is_object()) parent.type_error(key, "an object or null", r);
  Fields f(r, origin, std::string(key) + ".");
  // transformers still accepts the legacy "type" key for "rope_type".
  const char* type_key = f.contains("rope_type") ? "rope_type" : "type";
  std::string type = f.string(type_key, "default");
  RopeScaling out;
  if (type == "default") return out;
  if (type == "linear") {
    out.type = RopeType::Linear;
    out.factor = f.number("factor");
  } else if (type == "llama3") {
    out.type = RopeType::Llama3;
    out.factor = f.number("factor");
    out.low_freq_factor = f.number("low_freq_factor");
    out.high_freq_factor = f.number("high_freq_factor");
    out.original_max_position_embeddings = f.integer("original_max_position_embeddings");
    if (out.high_freq_factor <= out.low_freq_factor)
      f.invalid("high_freq_factor", fmt::format("({}) must be greater than low_freq_factor ({})", out.high_freq_factor,
                                                out.low_freq_factor));
  } else {
    f.invalid(type_key, fmt::format("\"{}\" is not supported (supported: default, linear, llama3)", type));
  }
  if (out.factor <= 0) f.invalid("factor", fmt::format("must be positive, got {}", out.factor));
  return out;
}

// Defaults below are those of transformers' BertConfig / RobertaConfig / MPNetConfig.
void parse_bert_like(const Fields& f, HfConfig& c) {
  bool roberta = c.model_type == "roberta", mpnet = c.model_type == "mpnet";
  bool roberta_ids = roberta || mpnet;  // <s> = 0, <pad> = 1, </s> = 2
  c.vocab_size = f.integer("vocab_size", roberta ? 50265 : mpnet ? 30527 : 30522);
  c.hidden_size = f.integer("hidden_size", 768);
  c.num_hidden_layers = f.integer("num_hidden_layers", 12);
  c.num_attention_heads = f.integer("num_attention_heads", 12);
  c.intermediate_size = f.integer("intermediate_size", 3072);
  c.hidden_act = f.string("hidden_act", "gelu");
  c.max_position_embeddings = f.integer("max_position_embeddings", 512);
  c.type_vocab_size = mpnet ? 0 : f.integer("type_vocab_size", 2);
  c.layer_norm_eps = f.number("layer_norm_eps", 1e-12);
  c.pad_token_id = f.nullable_integer("pad_token_id", roberta_ids ? 1 : 0);
  c.bos_token_ids = f.token_ids("bos_token_id", roberta_ids ? std::optional<std::int64_t>(0) : std::nullopt);
  c.eos_token_ids = f.token_ids("eos_token_id", roberta_ids ? std::optional<std::int64_t>(2) : std::nullopt);
  c.position_embedding_type = mpnet ? "relative" : f.string("position_embedding_type", "absolute");
  if (mpnet) c.relative_attention_num_buckets = f.integer("relative_attention_num_buckets", 32);
  c.hidden_dropout_prob = f.number("hidden_dropout_prob", 0.1);
  c.attention_probs_dropout_prob = f.number("attention_probs_dropout_prob", 0.1);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", true);  // PretrainedConfig's default
  c.head_dim = c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  c.qkv_bias = c.o_proj_bias = true;
}

// Defaults below are those of transformers' LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config.
void parse_llama_like(const Fields& f, HfConfig& c, std::string_view origin) {
  const std::string& t = c.model_type;
  bool qwen = t == "qwen2" || t == "qwen3";
  c.vocab_size = f.integer("vocab_size", qwen ? 151936 : 32000);
  c.hidden_size = f.integer("hidden_size", 4096);
  c.intermediate_size = f.integer("intermediate_size", qwen ? 22016 : t == "mistral" ? 14336 : 11008);
  c.num_hidden_layers = f.integer("num_hidden_layers", 32);
  c.num_attention_heads = f.integer("num_attention_heads", 32);
  // Absent and null differ: null means "same as num_attention_heads"; absent is the class default.
  std::optional<std::int64_t> kv_default = t == "mistral" ? std::optional<std::int64_t>(8)
                                           : qwen        ? std::optional<std::int64_t>(32)
                                                         : std::nullopt;
  c.num_key_value_heads = f.nullable_integer("num_key_value_heads", kv_default).value_or(c.num_attention_heads);
  std::optional<std::int64_t> hd_default = t == "qwen3" ? std::optional<std::int64_t>(128) : std::nullopt;
  std::optional<std::int64_t> hd = f.nullable_integer("head_dim", hd_default);
  if (!hd && c.num_attention_heads > 0) hd = c.hidden_size / c.num_attention_heads;
  c.head_dim = hd.value_or(0);
  c.hidden_act = f.string("hidden_act", "silu");
  c.max_position_embeddings = f.integer("max_position_embeddings", t == "llama" ? 2048 : t == "mistral" ? 4096 * 32 : 32768);
  c.rms_norm_eps = f.number("rms_norm_eps", 1e-6);
  c.pad_token_id = f.nullable_integer("pad_token_id", std::nullopt);
  std::optional<std::int64_t> bos = qwen ? std::nullopt : std::optional<std::int64_t>(1);
  std::optional<std::int64_t> eos = qwen ? std::nullopt : std::optional<std::int64_t>(2);
  c.bos_token_ids = f.token_ids("bos_token_id", bos);
  c.eos_token_ids = f.token_ids("eos_token_id", eos);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);

  // RoPE: older files have rope_theta + rope_scaling; transformers 5 writes one rope_parameters
  // object holding rope_theta and the scaling keys.
  if (f.present("rope_parameters")) {
    c.rope_scaling = parse_rope(f, "rope_parameters", origin);
    Fields rp(f.raw("rope_parameters"), origin, "rope_parameters.");
    c.rope_theta = rp.number("rope_theta", 10000.0);
  } else {
    c.rope_theta = f.number("rope_theta", 10000.0);
    if (f.present("rope_scaling")) c.rope_scaling = parse_rope(f, "rope_scaling", origin);
  }

  if (t == "llama" || t == "qwen3") c.attention_bias = f.boolean("attention_bias", false);
  if (t == "llama") c.mlp_bias = f.boolean("mlp_bias", false);
  c.qkv_bias = t == "qwen2" || c.attention_bias;
  c.o_proj_bias = c.attention_bias;
  c.qk_norm = t == "qwen3";

  if (t == "mistral") {
    c.sliding_window = f.nullable_integer("sliding_window", 4096);
  } else if (qwen) {
    // Qwen only uses the window when use_sliding_window is set.
    std::optional<std::int64_t> window = f.nullable_integer("sliding_window", 4096);
    if (f.boolean("use_sliding_window", false)) c.sliding_window = window;
  }
}

// Our converted USE-Lite graph: no transformers class, so the shape fields are required.
void parse_use_lite(const Fields& f, HfConfig& c) {
  c.vocab_size = f.integer("vocab_size");
  c.embedding_size = f.integer("embedding_size");
  c.hidden_size = f.integer("hidden_size");
  c.num_hidden_layers = f.integer("num_hidden_layers");
  c.num_attention_heads = f.integer("num_attention_heads");
  c.intermediate_size = f.integer("intermediate_size");
  c.output_dim = f.integer("output_dim");
  c.max_position_embeddings = f.integer("max_position_embeddings");
  c.hidden_act = f.string("hidden_act", "relu");
  c.layer_norm_eps = f.number("layer_norm_eps", 1e-6);
  c.pad_token_id = f.nullable_integer("pad_token_id", std::nullopt);
  c.head_dim = c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  c.qkv_bias = c.o_proj_bias = true;
}

void check_positive(const Fields& f, const char* key, std::int64_t v) {
  if (v <= 0) f.invalid(key, fmt::format("must be positive, got {}", v));
}

// Sizes far beyond any released checkpoint (a typo, a hostile file) are refused here, before a
// network of that size is allocated; the weights then pin every size exactly.
constexpr std::int64_t kMaxLayers = 1024, kMaxWidth = 1 << 17, kMaxVocab = 1 << 24, kMaxPositions = 1 << 24;

void check_at_most(const Fields& f, const char* key, std::int64_t v, std::int64_t limit) {
  if (v > limit) f.invalid(key, fmt::format("is {}, more than the {} any supported model has", v, limit));
}

void check_sizes(const Fields& f, const HfConfig& c) {
  check_at_most(f, "vocab_size", c.vocab_size, kMaxVocab);
  check_at_most(f, "hidden_size", c.hidden_size, kMaxWidth);
  check_at_most(f, "num_hidden_layers", c.num_hidden_layers, kMaxLayers);
  check_at_most(f, "num_attention_heads", c.num_attention_heads, kMaxWidth);
  check_at_most(f, "intermediate_size", c.intermediate_size, 8 * kMaxWidth);
  check_at_most(f, "max_position_embeddings", c.max_position_embeddings, kMaxPositions);
  check_at_most(f, "head_dim", c.head_dim, kMaxWidth);
  check_at_most(f, "relative_attention_num_buckets", c.relative_attention_num_buckets, kMaxPositions);
}

void validate(const Fields& f, const HfConfig& c) {
  check_positive(f, "vocab_size", c.vocab_size);
  check_positive(f, "hidden_size", c.hidden_size);
  check_positive(f, "num_hidden_layers", c.num_hidden_layers);
  check_positive(f, "num_attention_heads", c.num_attention_heads);
  check_positive(f, "intermediate_size", c.intermediate_size);
  check_positive(f, "max_position_embeddings", c.max_position_embeddings);
  check_sizes(f, c);
  if (c.model_type == "mpnet") {
    // transformers' MPNetEncoder always buckets relative positions into 32, and positions start at 2.
    if (c.relative_attention_num_buckets < 32)
      f.invalid("relative_attention_num_buckets",
                fmt::format("is {}, but MPNet buckets relative positions into 32", c.relative_attention_num_buckets));
    if (c.max_position_embeddings <= 2)
      f.invalid("max_position_embeddings",
                fmt::format("is {}, which leaves no position for a token (MPNet's start at 2)", c.max_position_embeddings));
  }
  if (c.model_type == "use-lite") {
    check_positive(f, "embedding_size", c.embedding_size);
    check_positive(f, "output_dim", c.output_dim);
  }
  // Without an explicit head_dim the heads split hidden_size evenly.
  bool explicit_head_dim = c.is_decoder() && (f.present("head_dim") || c.model_type == "qwen3");
  if (!explicit_head_dim && c.hidden_size % c.num_attention_heads != 0)
    f.invalid("num_attention_heads", fmt::format("({}) must divide hidden_size ({})", c.num_attention_heads, c.hidden_size));
  if (c.is_decoder()) {
    check_positive(f, "head_dim", c.head_dim);
    check_positive(f, "num_key_value_heads", c.num_key_value_heads);
    if (c.num_attention_heads % c.num_key_value_heads != 0)
      f.invalid("num_key_value_heads",
                fmt::format("({}) must divide num_attention_heads ({})", c.num_key_value_heads, c.num_attention_heads));
    if (c.rope_theta <= 0) f.invalid("rope_theta", fmt::format("must be positive, got {}", c.rope_theta));
    if (c.rms_norm_eps <= 0) f.invalid("rms_norm_eps", fmt::format("must be positive, got {}", c.rms_norm_eps));
  } else if (c.layer_norm_eps <= 0) {
    f.invalid("layer_norm_eps", fmt::format("must be positive, got {}", c.layer_norm_eps));
  }
}

}  // namespace

bool HfConfig::is_decoder() const {
  const ArchSpec* spec = arch_registry().find(model_type);
  return spec && spec->kind == ModelKind::Decoder;
}

HfConfig parse_hf_config(const json& j, std::string_view origin) {
  if (!j.is_object()) fail(ErrorCode::ModelFormat, "{}: config must be a JSON object, got {}", origin, j.type_name());
  Fields f(j, origin);
  HfConfig c;
  c.model_type = f.string("model_type");
  const ArchSpec* spec = arch_registry().find(c.model_type);
  if (!spec)
    fail(ErrorCode::ModelFormat, "{}: model_type \"{}\" is not supported (supported: {})", origin, c.model_type,
         fmt::join(model_types(), ", "));
  if (f.present("architectures")) {
    const json& a = f.raw("architectures");
    if (!a.is_array()) f.type_error("architectures", "a list of strings", a);
    for (const auto& x : a) {
      if (!x.is_string()) f.type_error("architectures", "a list of strings", a);
      c.architectures.push_back(x.get<std::string>());
    }
  }
  // transformers 5 renamed torch_dtype to dtype.
  c.torch_dtype = f.present("torch_dtype") ? f.string("torch_dtype") : f.present("dtype") ? f.string("dtype") : "";

  switch (spec->family) {
    case ConfigFamily::BertLike: parse_bert_like(f, c); break;
    case ConfigFamily::UseLite: parse_use_lite(f, c); break;
    case ConfigFamily::LlamaLike: parse_llama_like(f, c, origin); break;
  }
  c.initializer_range = f.number("initializer_range", 0.02);
  validate(f, c);
  return c;
}

HfConfig load_hf_config(const std::filesystem::path& path) {
  std::filesystem::path file = std::filesystem::is_directory(path) ? path / "config.json" : path;
  if (!std::filesystem::exists(file)) fail(ErrorCode::ModelFormat, "{}: model config not found", file.string());
  return parse_hf_config(io::read_json(file, ErrorCode::ModelFormat), file.string());
}

double initializer_range(const std::filesystem::path& model_dir) {
  const auto file = model_dir / "config.json";
  return std::filesystem::exists(file) ? load_hf_config(file).initializer_range : 0.02;
}

}  // namespace rankemb::models
