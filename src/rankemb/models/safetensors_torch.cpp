#include "rankemb/models/safetensors_torch.h"

#include <torch/torch.h>

#include <cstring>
#include <set>

#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace rankemb::models {

namespace fs = std::filesystem;

namespace {

bool is_floating(io::TensorDtype d) { return d == io::TensorDtype::F16 || d == io::TensorDtype::BF16 || d == io::TensorDtype::F32 || d == io::TensorDtype::F64; }

// The shard file names an index may use: plain relative paths inside the model directory, so a
// hostile index cannot make us read /etc/passwd or ../other_model.
fs::path shard_path(const fs::path& index, const std::string& shard) {
  fs::path rel(shard);
  bool escapes = rel.empty() || rel.is_absolute();
  for (const auto& part : rel) escapes = escapes || part == "..";
  if (escapes)
    fail(ErrorCode::ModelFormat, "{}: weight_map shard \"{}\" must be a relative path inside the model directory",
         index.string(), shard);
  return index.parent_path() / rel;
}

NamedTensors load_index(const fs::path& index, const TorchLoadOptions& options) {
  nlohmann::json j = io::read_json(index, ErrorCode::ModelFormat);
  auto wm = j.is_object() ? j.find("weight_map") : j.end();
  if (!j.is_object() || wm == j.end() || !wm->is_object())
    fail(ErrorCode::ModelFormat, "{}: expected an object with a \"weight_map\" object (tensor name -> shard file)",
         index.string());
  if (wm->empty()) fail(ErrorCode::ModelFormat, "{}: weight_map is empty", index.string());
  std::map<std::string, std::vector<std::string>> by_shard;  // sorted: deterministic load order
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string())
      fail(ErrorCode::ModelFormat, "{}: weight_map \"{}\" must be a file name string, got {}", index.string(), name,
           shard.dump());
    by_shard[shard.get<std::string>()].push_back(name);
  }
  NamedTensors out;
  std::map<std::string, std::string> shard_of;
  for (const auto& [shard, names] : by_shard) {
    fs::path path = shard_path(index, shard);
    io::SafetensorsFile file = io::SafetensorsFile::open(path);
    for (const auto& name : names) {
      if (!file.find(name))
        fail(ErrorCode::ModelFormat, "{}: weight_map puts tensor \"{}\" in {}, which does not contain it", index.string(),
             name, shard);
    }
    // Shards are loaded whole (as transformers does), so a tensor the map forgot still loads;
    // one stored in two shards is ambiguous.
    for (const auto& t : file.tensors()) {
      auto [it, inserted] = shard_of.emplace(t.name, shard);
      if (!inserted)
        fail(ErrorCode::ModelFormat, "{}: tensor \"{}\" is stored in both {} and {}", index.string(), t.name, it->second,
             shard);
      out.emplace(t.name, to_torch(file, t, options));
    }
  }
  return out;
}

}  // namespace

torch::ScalarType to_torch_dtype(io::TensorDtype dtype, std::string_view what) {
  switch (dtype) {
    case io::TensorDtype::Bool: return torch::kBool;
    case io::TensorDtype::U8: return torch::kUInt8;
    case io::TensorDtype::I8: return torch::kInt8;
    case io::TensorDtype::I16: return torch::kInt16;
    case io::TensorDtype::I32: return torch::kInt32;
    case io::TensorDtype::I64: return torch::kInt64;
    case io::TensorDtype::F16: return torch::kHalf;
    case io::TensorDtype::BF16: return torch::kBFloat16;
    case io::TensorDtype::F32: return torch::kFloat32;
    case io::TensorDtype::F64: return torch::kFloat64;
    default:
      // libtorch 1.13 has no unsigned 16/32/64-bit or float8 types.
      fail(ErrorCode::ModelFormat, "{}: dtype {} cannot be loaded (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)",
           what, io::dtype_name(dtype));
  }
}

std::optional<io::TensorDtype> from_torch_dtype(torch::ScalarType type) {
  switch (type) {
    case torch::kBool: return io::TensorDtype::Bool;
    case torch::kUInt8: return io::TensorDtype::U8;
    case torch::kInt8: return io::TensorDtype::I8;
    case torch::kInt16: return io::TensorDtype::I16;
    case torch::kInt32: return io::TensorDtype::I32;
    case torch::kInt64: return io::TensorDtype::I64;
    case torch::kHalf: return io::TensorDtype::F16;
    case torch::kBFloat16: return io::TensorDtype::BF16;
    case torch::kFloat32: return io::TensorDtype::F32;
    case torch::kFloat64: return io::TensorDtype::F64;
    default: return std::nullopt;
  }
}

torch::Tensor to_torch(const io::SafetensorsFile& file, const io::TensorView& t, const TorchLoadOptions& options) {
  torch::ScalarType type = to_torch_dtype(t.dtype, fmt::format("{}: tensor \"{}\"", file.origin(), t.name));
  auto topts = torch::TensorOptions().dtype(type);
  std::vector<std::int64_t> shape = t.shape;
  torch::Tensor out;
  // Zero-copy needs element alignment; files from the reference writer always have it, others may not.
  bool aligned = reinterpret_cast<std::uintptr_t>(t.bytes.data()) % io::dtype_size(t.dtype) == 0;
  if (t.bytes.empty() || !aligned || options.copy) {
    out = torch::empty(shape, topts);
    if (!t.bytes.empty()) std::memcpy(out.data_ptr(), t.bytes.data(), t.bytes.size());
  } else {
    // The mapping is MAP_PRIVATE + PROT_WRITE, so handing torch a non-const pointer is safe:
    // in-place writes land in private pages. The deleter keeps the mapping alive.
    auto keep = file.keep_alive();
    out = torch::from_blob(const_cast<std::byte*>(t.bytes.data()), shape, [keep](void*) {}, topts);
  }
  if (options.dtype && is_floating(t.dtype) && *options.dtype != type) out = out.to(*options.dtype);
  return out;
}

NamedTensors load_safetensors(const fs::path& path, const TorchLoadOptions& options) {
  io::SafetensorsFile file = io::SafetensorsFile::open(path);
  NamedTensors out;
  for (const auto& t : file.tensors()) out.emplace(t.name, to_torch(file, t, options));
  return out;
}

NamedTensors load_model_weights(const fs::path& path, const TorchLoadOptions& options) {
  if (fs::is_directory(path)) {
    if (fs::exists(path / "model.safetensors")) return load_safetensors(path / "model.safetensors", options);
    if (fs::exists(path / "model.safetensors.index.json")) return load_index(path / "model.safetensors.index.json", options);
    fail(ErrorCode::ModelFormat, "{}: no model.safetensors or model.safetensors.index.json in this directory", path.string());
  }
  if (path.filename().string().ends_with(".json")) return load_index(path, options);
  return load_safetensors(path, options);
}

void save_safetensors(const fs::path& path, const NamedTensors& tensors, const io::SafetensorsMetadata& metadata) {
  std::vector<torch::Tensor> cpu;  // keeps the contiguous copies alive while writing
  std::vector<io::TensorToWrite> items;
  cpu.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    auto dtype = from_torch_dtype(tensor.scalar_type());
    if (!dtype)
      fail(ErrorCode::Other, "{}: tensor \"{}\" has type {}, which safetensors cannot store", path.string(), name,
           std::string(c10::toString(tensor.scalar_type())));
    cpu.push_back(tensor.detach().to(torch::kCPU).contiguous());
    const torch::Tensor& c = cpu.back();
    auto nbytes = static_cast<std::size_t>(c.numel()) * c.element_size();
    items.push_back({name, *dtype, c.sizes().vec(),
                     std::span<const std::byte>(static_cast<const std::byte*>(c.data_ptr()), nbytes)});
  }
  io::write_safetensors(path, items, metadata);
}

torch::ScalarType scalar_type(rankemb::Dtype dtype) {
  return dtype == rankemb::Dtype::BFloat16 ? torch::kBFloat16 : torch::kFloat32;
}

rankemb::Dtype compute_dtype(torch::ScalarType type) {
  if (type == torch::kFloat32) return rankemb::Dtype::Float32;
  if (type == torch::kBFloat16) return rankemb::Dtype::BFloat16;
  fail(ErrorCode::Other, "{} is not a compute dtype (float32 or bfloat16)", c10::toString(type));
}

}  // namespace rankemb::models
