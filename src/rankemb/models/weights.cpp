#include "rankemb/models/weights.h"

#include <fmt/ranges.h>

#include "rankemb/util/error.h"

namespace rankemb::models {

WeightStore::WeightStore(models::NamedTensors tensors, std::string origin)
    : tensors_(std::move(tensors)), origin_(std::move(origin)) {}

WeightStore WeightStore::load(const std::filesystem::path& dir) {
  std::filesystem::path origin = dir / "model.safetensors";
  if (!std::filesystem::exists(origin)) {
    std::filesystem::path index = dir / "model.safetensors.index.json";
    if (std::filesystem::exists(index)) {
      origin = index;
    } else if (std::filesystem::exists(dir / "pytorch_model.bin")) {
      fail(ErrorCode::ModelFormat, "{}: only pytorch_model.bin found; convert it to model.safetensors", dir.string());
    } else {
      fail(ErrorCode::ModelFormat, "{}: missing model.safetensors", dir.string());
    }
  }
  // Zero-copy views of the mapping are enough: load_into() copies them into the parameters.
  return WeightStore(models::load_model_weights(dir, {.dtype = torch::kFloat32, .copy = false}), origin.string());
}

void WeightStore::strip_prefix(std::string_view prefix) {
  bool any = false;
  for (const auto& [name, t] : tensors_) any = any || name.starts_with(prefix);
  if (!any) return;
  models::NamedTensors out;
  for (auto& [name, t] : tensors_) {
    std::string key = name.starts_with(prefix) ? name.substr(prefix.size()) : name;
    if (!out.emplace(key, t).second) {
      fail(ErrorCode::ModelFormat, "{}: tensor \"{}\" appears both with and without the prefix \"{}\"", origin_, key,
           prefix);
    }
  }
  tensors_ = std::move(out);
}

void WeightStore::ignore_prefix(std::string_view prefix) {
  for (const auto& [name, t] : tensors_) {
    if (name.starts_with(prefix)) claimed_.insert(name);
  }
}

void WeightStore::rename_prefix(std::string_view from, std::string_view to) {
  models::NamedTensors out;
  for (auto& [name, t] : tensors_) {
    std::string key = name.starts_with(from) ? std::string(to) + name.substr(from.size()) : name;
    if (!out.emplace(key, t).second) fail(ErrorCode::ModelFormat, "{}: two tensors named \"{}\" after renaming \"{}\" to \"{}\"", origin_, key, from, to);
  }
  tensors_ = std::move(out);
}

bool WeightStore::has(const std::string& name) const { return tensors_.count(name) != 0; }

void WeightStore::require(const std::string& name, const std::vector<std::int64_t>& shape) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(ErrorCode::ModelFormat, "{}: missing tensor \"{}\"", origin_, name);
  std::vector<std::int64_t> got(it->second.sizes().begin(), it->second.sizes().end());
  if (got != shape) {
    fail(ErrorCode::ModelFormat, "{}: tensor \"{}\" has shape [{}], expected [{}]", origin_, name,
         fmt::join(got, ", "), fmt::join(shape, ", "));
  }
}

torch::Tensor WeightStore::take(const std::string& name, const std::vector<std::int64_t>& shape) {
  require(name, shape);
  claimed_.insert(name);
  return tensors_.at(name);
}

void WeightStore::load_into(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, torch::Tensor& dst) {
    torch::Tensor src = take(name, std::vector<std::int64_t>(dst.sizes().begin(), dst.sizes().end()));
    dst.copy_(src);
  };
  for (auto& p : module.named_parameters(/*recurse=*/true)) copy(p.key(), p.value());
  for (auto& b : module.named_buffers(/*recurse=*/true)) copy(b.key(), b.value());
}

void WeightStore::finish() const {
  std::vector<std::string> unused;
  for (const auto& [name, t] : tensors_) {
    if (!claimed_.count(name)) unused.push_back(name);
  }
  if (unused.empty()) return;
  std::size_t shown = std::min<std::size_t>(unused.size(), 5);
  fail(ErrorCode::ModelFormat, "{}: {} tensor(s) not used by the architecture (first: {}); wrong model_type?", origin_,
       unused.size(), fmt::join(unused.begin(), unused.begin() + static_cast<std::ptrdiff_t>(shown), ", "));
}

}  // namespace rankemb::models
