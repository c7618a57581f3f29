// rankemb::models GGUF checkpoints: a llama.cpp model file seen as the Hugging Face checkpoint it
// was converted from. The architecture metadata becomes a config.json document (parsed by the one
// config parser, config.h), the tensors are dequantized (io/ggml_quants.h) and renamed to their
// Hugging Face names, and the row permutation llama.cpp's converter applies to the Llama q/k
// projections is undone, so the decoder in causal_lm.cpp runs a GGUF model unchanged.
// Architectures: llama (Llama 2/3, SmolLM, Mistral as converted by llama.cpp), qwen2, qwen3.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "rankemb/io/gguf.h"
#include "rankemb/models/config.h"
#include "rankemb/models/kernels/quant_matmul.h"
#include "rankemb/models/safetensors_torch.h"

namespace rankemb::models {

// The config.json a GGUF decoder stands for. Throws Error(ModelFormat) naming the file and key
// for an unsupported architecture, a missing key or a layout our decoder cannot run (partial
// rotary, per-layer head counts, rope scaling other than linear).
nlohmann::json gguf_config_json(const io::GgufFile& file);

// Every tensor as float32 under its Hugging Face name ("model.layers.0.self_attn.q_proj.weight").
// Throws Error(ModelFormat) naming the tensor for one the mapping does not know or a type that
// cannot be dequantized.
NamedTensors gguf_tensors(const io::GgufFile& file, const HfConfig& config);

// The matrices stored as Q4_1 or Q8_0 blocks, repacked for kernels/quant_matmul under their
// Hugging Face names, rows in the same order as gguf_tensors' (q/k unpermuted). Other types are
// absent (the decoder multiplies those in float32 only).
std::map<std::string, kernels::QuantMatrix> gguf_quant_matrices(const io::GgufFile& file, const HfConfig& config);

}  // namespace rankemb::models
