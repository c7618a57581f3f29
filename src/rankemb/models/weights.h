// rankemb::models WeightStore: the tensors of a checkpoint, handed to an architecture's build
// function by canonical (Hugging Face, unprefixed) name. It strips a checkpoint-wide prefix
// ("bert.", "roberta."), throws Error(ModelFormat) naming the file, tensor and shapes on a missing
// tensor or a shape mismatch, and finish() throws on tensors nobody claimed (so a checkpoint of
// a different architecture is not silently half-loaded).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "rankemb/models/safetensors_torch.h"

namespace rankemb::models {

class WeightStore {
 public:
  // `origin` (the weights file) is named in every error.
  WeightStore(models::NamedTensors tensors, std::string origin);
  // Reads model.safetensors (or a sharded index) from a model directory, as float32.
  static WeightStore load(const std::filesystem::path& dir);

  // Drops `prefix` from every name that has it, when some name has it (SimCSE-style "bert.").
  void strip_prefix(std::string_view prefix);
  // Marks names starting with `prefix` as claimed without using them (e.g. "lm_head.", "mlp."
  // heads of training checkpoints, "embeddings.position_ids" buffers).
  void ignore_prefix(std::string_view prefix);
  // Renames every tensor starting with `from` to start with `to` instead (SimCSE's "mlp." head is
  // BERT's "pooler.").
  void rename_prefix(std::string_view from, std::string_view to);

  bool has(const std::string& name) const;
  // Throws (as take() would) unless the store holds `name` with `shape`; claims nothing. Lets a
  // build function check the sizes config.json asks for before allocating a network of them.
  void require(const std::string& name, const std::vector<std::int64_t>& shape) const;
  // The tensor, checked against `shape`; marks it claimed.
  torch::Tensor take(const std::string& name, const std::vector<std::int64_t>& shape);
  // Copies every parameter and buffer of `module` (recursively, by its dotted name) from the store.
  void load_into(torch::nn::Module& module);
  // Throws when tensors remain unclaimed (lists the first few).
  void finish() const;

  const std::string& origin() const { return origin_; }

 private:
  models::NamedTensors tensors_;
  std::set<std::string> claimed_;
  std::string origin_;
};

}  // namespace rankemb::models
