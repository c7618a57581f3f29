#include "rankemb/models/gguf_checkpoint.h"

#include <array>
#include <string>
#include <string_view>

#include <torch/torch.h>

#include "rankemb/io/ggml_quants.h"
#include "rankemb/util/error.h"

namespace rankemb::models {

namespace {

using nlohmann::json;

struct ArchInfo {
  std::string_view gguf;        // general.architecture
  std::string_view model_type;  // config.json model_type
  std::string_view hf_class;    // architectures[0]
  bool permuted_qk;             // llama.cpp's converter permuted q/k rows (rope in interleaved order)
};

constexpr std::array<ArchInfo, 3> kArchs{{
    {"llama", "llama", "LlamaForCausalLM", true},
    {"qwen2", "qwen2", "Qwen2ForCausalLM", false},
    {"qwen3", "qwen3", "Qwen3ForCausalLM", false},
}};

const ArchInfo& arch_of(const io::GgufFile& f) {
  const std::string arch = f.require_string("general.architecture");
  for (const auto& a : kArchs)
    if (a.gguf == arch) return a;
  fail(ErrorCode::ModelFormat, "{}: general.architecture \"{}\" is not supported (llama, qwen2, qwen3)", f.origin(), arch);
}

// Per-block GGUF tensor names and their Hugging Face names under model.layers.N.
constexpr std::array<std::pair<std::string_view, std::string_view>, 16> kBlockNames{{
    {"attn_norm.weight", "input_layernorm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_output.bias", "self_attn.o_proj.bias"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
    {"ffn_down.bias", "mlp.down_proj.bias"},
}};

std::string hf_name(const io::GgufFile& f, const std::string& name) {
  if (name == "token_embd.weight") return "model.embed_tokens.weight";
  if (name == "output_norm.weight") return "model.norm.weight";
  if (name == "output.weight") return "lm_head.weight";
  if (name.starts_with("blk.")) {
    const auto dot = name.find('.', 4);
    const std::string_view index(name.data() + 4, dot == std::string::npos ? 0 : dot - 4);
    const bool digits = !index.empty() && index.find_first_not_of("0123456789") == std::string_view::npos;
    if (digits) {
      const std::string_view rest(name.data() + dot + 1);
      for (const auto& [gguf, hf] : kBlockNames)
        if (rest == gguf) return fmt::format("model.layers.{}.{}", index, hf);
    }
  }
  fail(ErrorCode::ModelFormat, "{}: tensor \"{}\" has no Hugging Face counterpart in this decoder (rope_freqs and vision "
       "tensors are not supported)", f.origin(), name);
}

// llama.cpp's converter stores q/k rows of each head as (even, odd) halves interleaved:
// rows reshaped [heads, 2, d/2] were swapped to [heads, d/2, 2]. Undo it.
torch::Tensor unpermute(const torch::Tensor& t, std::int64_t heads, const io::GgufFile& f, const std::string& name) {
  const std::int64_t rows = t.size(0);
  if (heads <= 0 || rows % (2 * heads) != 0)
    fail(ErrorCode::ModelFormat, "{}: tensor \"{}\" has {} rows, not a multiple of 2 x {} heads", f.origin(), name, rows, heads);
  std::vector<std::int64_t> shape{heads, rows / heads / 2, 2};
  for (std::int64_t d = 1; d < t.dim(); ++d) shape.push_back(t.size(d));
  return t.reshape(shape).transpose(1, 2).reshape(t.sizes()).contiguous();
}

// The q/k rows' permutation as a row order: order[r] is the stored row that unpermute() puts at r.
std::vector<std::int64_t> unpermuted_order(std::int64_t rows, std::int64_t heads, const io::GgufFile& f, const std::string& name) {
  const torch::Tensor order = unpermute(torch::arange(rows, torch::kLong), heads, f, name);
  return {order.data_ptr<std::int64_t>(), order.data_ptr<std::int64_t>() + rows};
}

}  // namespace

json gguf_config_json(const io::GgufFile& f) {
  const ArchInfo& a = arch_of(f);
  const std::string p = std::string(a.gguf) + ".";
  auto required = [&](const std::string& key) { return f.require_integer(p + key); };
  json c = {
      {"model_type", a.model_type},
      {"architectures", {a.hf_class}},
      {"hidden_size", required("embedding_length")},
      {"intermediate_size", required("feed_forward_length")},
      {"num_hidden_layers", required("block_count")},
      {"num_attention_heads", required("attention.head_count")},
      {"max_position_embeddings", required("context_length")},
      {"hidden_act", "silu"},
      {"torch_dtype", "float32"},
      {"tie_word_embeddings", f.find_tensor("output.weight") == nullptr},
  };
  const auto* tokens = f.strings("tokenizer.ggml.tokens");
  if (auto v = f.integer(p + "vocab_size")) c["vocab_size"] = *v;
  else if (tokens) c["vocab_size"] = tokens->size();
  else if (const auto* emb = f.find_tensor("token_embd.weight"); emb && emb->ne.size() == 2) c["vocab_size"] = emb->ne[1];
  if (f.find(p + "attention.head_count_kv") && f.find(p + "attention.head_count_kv")->type == io::GgufType::Array)
    fail(ErrorCode::ModelFormat, "{}: {}attention.head_count_kv per layer is not supported", f.origin(), p);
  c["num_key_value_heads"] = f.integer(p + "attention.head_count_kv").value_or(c["num_attention_heads"].get<std::int64_t>());
  if (auto eps = f.number(p + "attention.layer_norm_rms_epsilon")) c["rms_norm_eps"] = *eps;
  if (auto theta = f.number(p + "rope.freq_base")) c["rope_theta"] = *theta;
  if (auto kl = f.integer(p + "attention.key_length")) c["head_dim"] = *kl;
  const std::int64_t head_dim = c.contains("head_dim") ? c["head_dim"].get<std::int64_t>()
                                : c["hidden_size"].get<std::int64_t>() / std::max<std::int64_t>(1, c["num_attention_heads"]);
  if (auto rot = f.integer(p + "rope.dimension_count"); rot && *rot != head_dim)
    fail(ErrorCode::ModelFormat, "{}: {}rope.dimension_count {} differs from the head size {} (partial rotary is not supported)",
         f.origin(), p, *rot, head_dim);
  if (auto type = f.string(p + "rope.scaling.type"); type && *type != "none") {
    if (*type != "linear") fail(ErrorCode::ModelFormat, "{}: {}rope.scaling.type \"{}\" is not supported (none, linear)", f.origin(), p, *type);
    c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", f.number(p + "rope.scaling.factor").value_or(1.0)}};
  }
  if (f.find_tensor("rope_freqs.weight"))
    fail(ErrorCode::ModelFormat, "{}: rope_freqs.weight (Llama 3.1 rope scaling) is not supported", f.origin());
  if (a.gguf == "llama") c["attention_bias"] = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  if (auto bos = f.integer("tokenizer.ggml.bos_token_id")) c["bos_token_id"] = *bos;
  if (auto eos = f.integer("tokenizer.ggml.eos_token_id")) c["eos_token_id"] = *eos;
  return c;
}

NamedTensors gguf_tensors(const io::GgufFile& f, const HfConfig& config) {
  const bool permuted = arch_of(f).permuted_qk;
  NamedTensors out;
  for (const io::GgufTensor& t : f.tensors()) {
    const std::string name = hf_name(f, t.name);
    const io::GgmlTypeInfo& info = *io::ggml_type_info(t.type);  // the reader refused unknown codes
    torch::Tensor values = torch::empty(t.shape(), torch::kFloat);
    io::dequantize(info, t.bytes, {values.data_ptr<float>(), static_cast<std::size_t>(t.numel())},
                   fmt::format("{}: tensor \"{}\"", f.origin(), t.name));
    if (permuted && (name.ends_with("q_proj.weight") || name.ends_with("q_proj.bias")))
      values = unpermute(values, config.num_attention_heads, f, t.name);
    else if (permuted && (name.ends_with("k_proj.weight") || name.ends_with("k_proj.bias")))
      values = unpermute(values, config.num_key_value_heads, f, t.name);
    out.emplace(name, std::move(values));
  }
  return out;
}

std::map<std::string, kernels::QuantMatrix> gguf_quant_matrices(const io::GgufFile& f, const HfConfig& config) {
  const bool permuted = arch_of(f).permuted_qk;
  std::map<std::string, kernels::QuantMatrix> out;
  for (const io::GgufTensor& t : f.tensors()) {
    const std::string type = io::ggml_type_name(t.type);
    if ((type != "Q4_1" && type != "Q8_0") || t.ne.size() != 2) continue;
    const std::string name = hf_name(f, t.name);
    const std::int64_t rows = t.ne[1], cols = t.ne[0];
    std::vector<std::int64_t> order;
    if (permuted && name.ends_with("q_proj.weight")) order = unpermuted_order(rows, config.num_attention_heads, f, t.name);
    if (permuted && name.ends_with("k_proj.weight")) order = unpermuted_order(rows, config.num_key_value_heads, f, t.name);
    const std::span<const std::uint8_t> raw(reinterpret_cast<const std::uint8_t*>(t.bytes.data()), t.bytes.size());
    out.emplace(name, kernels::QuantMatrix(type == "Q4_1" ? kernels::BlockType::Q4_1 : kernels::BlockType::Q8_0, raw,
                                           rows, cols, order));
  }
  return out;
}

}  // namespace rankemb::models
