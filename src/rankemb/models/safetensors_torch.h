// rankemb::models safetensors <-> torch::Tensor: loading tensors (zero-copy over the file mapping when
// possible), loading a model's weights from model.safetensors or a sharded
// model.safetensors.index.json, and saving named tensors. The format itself lives in safetensors.h,
// which stays free of libtorch.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <torch/types.h>

#include "rankemb/io/safetensors.h"
#include "rankemb/util/types.h"

namespace rankemb::models {

// Ordered by name so iteration (and anything derived from it) is deterministic.
using NamedTensors = std::map<std::string, torch::Tensor>;

struct TorchLoadOptions {
  // Cast floating-point tensors (F32/F16/BF16/F64) to this type; integer and bool tensors (e.g.
  // BERT's position_ids) keep theirs. nullopt keeps the file's dtype.
  std::optional<torch::ScalarType> dtype;
  // false: tensors alias the file mapping (copy-on-write; the mapping lives as long as any such
  // tensor); tensors that must be converted or are misaligned are copied anyway.
  // true: every tensor owns its memory, so the file is unmapped once loading returns.
  bool copy = false;
};

// The torch type for a safetensors dtype; throws Error(ModelFormat) for dtypes libtorch lacks
// (U16, U32, U64, F8_*), naming `what` (e.g. "file: tensor \"x\"").
torch::ScalarType to_torch_dtype(io::TensorDtype dtype, std::string_view what);
// nullopt for torch types the format cannot hold (complex, quantized, ...).
std::optional<io::TensorDtype> from_torch_dtype(torch::ScalarType type);

// The libtorch type of a compute dtype (util/types.h), and back (throws Error(Other) for a type
// that is not a compute dtype).
torch::ScalarType scalar_type(rankemb::Dtype dtype);
rankemb::Dtype compute_dtype(torch::ScalarType type);

// One tensor of an open file, as a CPU tensor.
torch::Tensor to_torch(const io::SafetensorsFile& file, const io::TensorView& tensor, const TorchLoadOptions& options = {});
// Every tensor of one file.
NamedTensors load_safetensors(const std::filesystem::path& path, const TorchLoadOptions& options = {});
// A model's weights. `path` is a model directory (containing model.safetensors, or else
// model.safetensors.index.json), a .safetensors file, or an index file whose weight_map names the
// shard of every tensor. Throws Error(ModelFormat) naming the index, tensor and shard when a
// listed tensor is missing from its shard or a tensor appears in two shards.
NamedTensors load_model_weights(const std::filesystem::path& path, const TorchLoadOptions& options = {});

// Writes the tensors (moved to CPU, made contiguous) atomically; same layout as the reference
// library. Throws Error(Other) for a tensor type the format cannot hold.
void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors, const io::SafetensorsMetadata& metadata = {});

}  // namespace rankemb::models
