// rankemb::models causal language models (decoders) for stage 1 of the method: the Llama family
// from Hugging Face checkpoints (Llama 2/3 incl. Llama-3 rope scaling, Mistral, Qwen2/Qwen2.5 with
// q/k/v bias, Qwen3 with q/k RMSNorm, SmolLM): RMSNorm, RoPE, grouped-query attention, SwiGLU,
// tied or separate output embedding, float32 or bfloat16 weights.
//
// The model owns a pool of sequence *slots*, each with its own KV cache. forward() appends new
// tokens to any set of slots at once - a whole prompt for one slot (prefill) and one token for
// another (decode) in the same call - and returns next-token logits. This is what continuous
// batching needs: a finished stream's slot is cleared and refilled with a new prompt while the
// other slots keep decoding. Positions are per slot (0-based from the slot's first token), so a
// batch of unequal prompts gives the same logits as running each alone (up to float rounding of
// differently shaped matrix products, ~1e-5).
//
// Implementation notes (causal_lm.cpp): the cache is one zero-initialized pool per layer of
// 2 x n_slots x kv_heads x max_tokens x head_dim values in the compute dtype, allocated by
// reserve() and written in place (no per-token reallocation). Mistral's sliding_window is
// applied as transformers does; Qwen2/Qwen3 use_sliding_window is ignored (full attention).
// Not thread-safe: one caller drives forward() at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "rankemb/models/config.h"
#include "rankemb/text/tokenizer.h"
#include "rankemb/util/types.h"

namespace rankemb::models {

struct CausalLmOptions {
  Dtype dtype = Dtype::Float32;  // compute/weight dtype
  torch::Device device = torch::kCPU;
};

class CausalLm {
 public:
  virtual ~CausalLm() = default;

  virtual const HfConfig& config() const = 0;
  // The checkpoint's tokenizer (tokenizer.json); nullptr when the directory has none (tests with
  // random weights drive the model with ids only).
  virtual const text::Tokenizer* tokenizer() const = 0;
  virtual std::int64_t vocab_size() const = 0;
  // Token ids that end generation, deduplicated in this order: config.json eos_token_id (int or
  // list), generation_config.json eos_token_id (int or list), then <|eot_id|>, <|im_end|>,
  // <|end_of_text|> when the tokenizer has them.
  // BOS is not added by the model: config().bos_token_ids holds config.json's value, and
  // tokenizer()->encode() (add_special_tokens) prepends it when the tokenizer.json
  // post-processor does (Llama 3, TinyStories); Qwen tokenizers add none.
  virtual const std::vector<std::int64_t>& stop_token_ids() const = 0;

  // Makes room for `n_slots` slots of up to `max_tokens` tokens each; clears all slots.
  // Throws Error(Usage) when either is 0.
  virtual void reserve(std::size_t n_slots, std::size_t max_tokens) = 0;
  virtual std::size_t n_slots() const = 0;
  // Forgets a slot's tokens (its cache) so it can take a new sequence.
  virtual void clear(std::size_t slot) = 0;
  // Tokens currently cached in `slot`.
  virtual std::size_t length(std::size_t slot) const = 0;

  // Prompt-prefix reuse: copy_prefix makes the empty slot `to` hold the first `n` cached tokens of
  // slot `from` (their keys and values are copied, not recomputed), so a prompt that starts with
  // those tokens only feeds the rest. Models that cannot do this say so (the default); callers
  // then feed whole prompts. Throws Error(Usage) for bad slots, a non-empty `to`, or n > length(from).
  virtual bool can_copy_prefix() const { return false; }
  virtual void copy_prefix(std::size_t from, std::size_t to, std::size_t n);

  // Appends tokens[i] (non-empty) to slot slots[i] (distinct slots) and runs them through the
  // network in one batch. Returns float32 logits on the CPU:
  //   all_positions = false: [slots.size(), vocab] - the logits after each slot's last new token;
  //   all_positions = true:  [slots.size(), max_i tokens[i].size(), vocab] - every new position,
  //                          rows past a slot's own length are zero.
  // Throws Error(Usage) on a bad or repeated slot, empty tokens, an id outside [0, vocab), a call
  // before reserve(), or when a slot would exceed max_tokens; a rejected call changes nothing.
  virtual torch::Tensor forward(const std::vector<std::size_t>& slots,
                                const std::vector<std::vector<std::int64_t>>& tokens,
                                bool all_positions = false) = 0;
};

// Loads config.json + model.safetensors (or a sharded model.safetensors.index.json) +
// tokenizer.json when present; or, when `model_dir` is a GGUF file, the model, its tokenizer and
// its metadata from that one file (gguf_checkpoint.h; quantized tensors dequantized to float32
// first, then cast to the compute dtype). Throws Error(ModelFormat) naming the file/field for unsupported
// architectures or missing/mismatched tensors.
std::unique_ptr<CausalLm> load_causal_lm(const std::filesystem::path& model_dir, const CausalLmOptions& options = {});

}  // namespace rankemb::models
