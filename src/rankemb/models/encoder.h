// rankemb::models sentence encoders: text in, one vector per text out.
//
//   SentenceEncoder = Tokenizer + EncoderNetwork (a torch::nn::Module) + Pooler + optional L2 Normalize
//
// - EncoderNetwork is what an architecture file (models/arch/<name>.cpp) implements: token ids and
//   an attention mask in, hidden states out (EncoderOutput). Its parameters carry Hugging Face
//   names (register_module/register_parameter with the HF spelling, without a "bert."-style
//   prefix), so load_weights() in weights.h fills them and save() writes them back unchanged.
//   An arch whose sentence vector is not one of the generic poolers (USE-Lite: mean + tanh
//   projection to 512) overrides pool() and embedding_dim().
// - An arch is built by a function `std::shared_ptr<EncoderNetwork> build(const HfConfig&,
//   WeightStore&)` listed with one line in models/arch/all.cpp (see registry.h).
// - SentenceEncoder::embed() is differentiable (training); encode() is batched no-grad inference.
// - load_encoder() reads a Hugging Face or sentence-transformers directory and dispatches on
//   config.json's model_type through the registry.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "rankemb/models/config.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/device.h"
#include "rankemb/util/progress.h"
#include "rankemb/util/types.h"

namespace rankemb::models {

// How token states become one sentence vector (names as in SimCSE's --pooler_type).
enum class Pooler {
  Cls,              // the network's pooler output (BERT dense+tanh) when it has one, else [CLS] state
  ClsBeforePooler,  // last-layer state of the first token
  Avg,              // mean of last-layer states over non-pad tokens
  AvgFirstLast,     // mean over tokens of (hidden_states[1] + hidden_states[-1]) / 2, as SimCSE's models.py
  AvgTop2,          // mean over tokens of (hidden_states[-2] + hidden_states[-1]) / 2
  Max,              // element-wise max over non-pad tokens (sentence-transformers max pooling)
};
// "cls", "cls_before_pooler", "avg", "avg_first_last", "avg_top2", "max".
std::string_view pooler_name(Pooler p);
// Throws Error(Usage) listing the valid names for an unknown one.
Pooler parse_pooler(std::string_view name);

// What a network returns for one batch.
struct EncoderOutput {
  torch::Tensor last_hidden_state;           // [batch, seq, hidden]
  std::vector<torch::Tensor> hidden_states;  // embeddings output then each layer's output (n_layers + 1
                                             // tensors); filled only when output_hidden_states
  torch::Tensor pooler_output;               // [batch, hidden]; undefined when the network has no pooler
};

// One padded batch of token ids.
struct TokenBatch {
  torch::Tensor input_ids;       // [batch, seq] int64, padded with the pad id on the right
  torch::Tensor attention_mask;  // [batch, seq] int64, 1 for tokens, 0 for padding
};

class EncoderNetwork : public torch::nn::Module {
 public:
  // `input_ids` and `attention_mask` as in TokenBatch; token types are all 0 (single sentences).
  virtual EncoderOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                bool output_hidden_states = false) = 0;
  // What SentenceEncoder runs: forward() computed on the real tokens only where the arch can and
  // it applies (inference in float32 on the CPU: arch/layers.h Packing), forward() otherwise. The
  // real tokens' states equal forward()'s up to float32 rounding; pads are zeros, which the
  // poolers mask out (every row has a real first token, so the [CLS] poolers read a real state).
  virtual EncoderOutput forward_unpadded(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                         bool output_hidden_states = false) {
    return forward(input_ids, attention_mask, output_hidden_states);
  }
  // Whether forward_unpadded has a packed path of its own (and so int8 inference).
  virtual bool has_packed_path() const { return false; }
  virtual std::int64_t hidden_size() const = 0;  // width of last_hidden_state
  // Longest input (in tokens, specials included) the position table allows.
  virtual std::int64_t max_tokens() const = 0;
  // The id batches are padded with when the network cares (RoBERTa derives positions from it);
  // nullopt = the tokenizer's pad token (or 0).
  virtual std::optional<std::int64_t> pad_token_id() const { return std::nullopt; }
  // The pooler used when neither the model directory nor the caller names one.
  virtual Pooler default_pooler() const { return Pooler::Cls; }
  // Whether `pooler` needs EncoderOutput::hidden_states.
  virtual bool pooler_needs_hidden_states(Pooler pooler) const;
  // One vector per row, [batch, embedding_dim(pooler)]; float32 when the hidden states are 16-bit
  // (averaging in bfloat16 loses digits). The default implements every Pooler over `out`; archs
  // with a pooling of their own override it.
  virtual torch::Tensor pool(const EncoderOutput& out, const torch::Tensor& attention_mask, Pooler pooler);
  virtual std::int64_t embedding_dim(Pooler pooler) const { return hidden_size(); }

  // Inference with the linear layers in int8 (kernels/int8_linear.h) where forward_unpadded takes
  // the packed path; training and the padded forward stay in the parameters' dtype.
  bool int8_inference() const { return int8_inference_; }
  void set_int8_inference(bool on) { int8_inference_ = on; }

 private:
  bool int8_inference_ = false;
};

struct LoadOptions {
  std::optional<Pooler> pooler;                   // overrides the directory's pooling (modules.json) / the arch default
  Dtype dtype = Dtype::Float32;                   // parameter and compute dtype
  Device device;                                  // where the weights live and the network runs
  // Inference with the linear layers in int8 (EncoderNetwork::int8_inference): float32 on the CPU,
  // an arch with a packed path (BERT family, MPNet), kernels on; Error(Usage) otherwise.
  bool int8 = false;
};

struct EncodeOptions {
  std::int64_t batch = 64;        // texts per forward pass (texts are sorted by length first)
  std::int64_t max_length = 0;    // tokens per text incl. specials; 0 = the model's default
  bool normalize = false;         // L2-normalize (on top of a Normalize module the model may have)
  // Compute dtype; must match the loaded network's (LoadOptions::dtype). nullopt = the network's.
  std::optional<Dtype> dtype;
};

class SentenceEncoder {
 public:
  // `source_dir` is the directory the model came from (save() copies tokenizer and
  // sentence-transformers files from it); empty when built in memory.
  SentenceEncoder(std::shared_ptr<text::Tokenizer> tokenizer, std::shared_ptr<EncoderNetwork> network, Pooler pooler,
                  bool normalize, std::int64_t default_max_length, std::filesystem::path source_dir = {});

  // Tokenizes and pads (max_length 0 = default_max_length()). Throws Error(Input) for invalid UTF-8.
  TokenBatch tokenize(const std::vector<std::string>& texts, std::int64_t max_length = 0) const;
  // Differentiable forward: [texts, dim()] float tensor in the network's dtype, normalized when
  // the model has a Normalize module. Respects the network's train()/eval() mode.
  torch::Tensor embed(const std::vector<std::string>& texts, std::int64_t max_length = 0);
  // The same from ids (bypassing the tokenizer).
  torch::Tensor embed_batch(const TokenBatch& batch);
  // No-grad inference in eval mode (the mode is restored afterwards): [texts, dim()] float32 on
  // CPU whatever the network's device, rows in input order. Reports progress in texts. Several
  // threads may call it at once on a model in eval mode (`rankemb serve --workers`).
  torch::Tensor encode(const std::vector<std::string>& texts, const EncodeOptions& options, Progress& progress);

  std::int64_t dim() const { return network_->embedding_dim(pooler_); }
  Pooler pooler() const { return pooler_; }
  void set_pooler(Pooler pooler) { pooler_ = pooler; }
  bool normalizes() const { return normalize_; }  // has a Normalize module
  std::int64_t default_max_length() const { return default_max_length_; }
  Dtype dtype() const;

  EncoderNetwork& network() { return *network_; }
  const std::shared_ptr<EncoderNetwork>& network_ptr() const { return network_; }
  const text::Tokenizer& tokenizer() const { return *tokenizer_; }

  // Writes a directory that Hugging Face / sentence-transformers load: config.json,
  // model.safetensors (float32 unless the network is bfloat16), the tokenizer files, and for
  // sentence-transformers sources modules.json, sentence_bert_config.json, 1_Pooling/config.json
  // (with the current pooler) and 2_Normalize. A plain Hugging Face source whose current pooler
  // is not the network's default but is one sentence-transformers has (avg, cls_before_pooler,
  // max) is saved with that sentence-transformers layout added, so it reloads with the same
  // pooler everywhere. Atomic per file; creates `dir`.
  void save(const std::filesystem::path& dir) const;

 private:
  std::shared_ptr<text::Tokenizer> tokenizer_;
  std::shared_ptr<EncoderNetwork> network_;
  Pooler pooler_;
  bool normalize_;
  std::int64_t default_max_length_;
  std::filesystem::path source_dir_;
  text::TokenId pad_id_;
};

// The files of model directory `dir` that the loaders read and that exist (config, weights,
// tokenizer, sentence-transformers modules): what an output path must never replace.
std::vector<std::filesystem::path> model_input_files(const std::filesystem::path& dir);

// Loads a model directory: Hugging Face (config.json + model.safetensors + tokenizer files) or
// sentence-transformers (adds modules.json, 1_Pooling/config.json, 2_Normalize). Throws
// Error(ModelFormat) naming the file for anything missing, malformed or unsupported.
std::unique_ptr<SentenceEncoder> load_encoder(const std::filesystem::path& dir, const LoadOptions& options = {});

}  // namespace rankemb::models
