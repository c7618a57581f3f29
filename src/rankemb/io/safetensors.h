// rankemb::io safetensors: reading and writing the Hugging Face safetensors format without
// libtorch. The reader memory-maps the file, validates the whole header up front (the same
// acceptance rules as the reference `safetensors` library, plus a duplicate-key check the spec asks
// for) and hands out byte views; the writer produces the same bytes as the reference library.
// Format: u64 little-endian header length N, N bytes of JSON
// {"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}},
// then the data section, which tensors must cover exactly (no gaps, no overlaps, no trailing bytes).
// Conversion to torch::Tensor lives in safetensors_torch.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rankemb/io/mapped_file.h"

namespace rankemb::io {

// Every dtype the format defines, in the reference library's order (which is also its alignment
// order, used to sort tensors when writing).
enum class TensorDtype : std::uint8_t { Bool, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

std::string_view dtype_name(TensorDtype dtype);                   // "F32", "BF16", ...
std::optional<TensorDtype> parse_dtype(std::string_view name);    // nullopt for an unknown name
std::size_t dtype_size(TensorDtype dtype);                        // bytes per element
// The float types our models load (F32, F16, BF16); others parse fine but are refused on load.
bool dtype_is_loadable(TensorDtype dtype);

using SafetensorsMetadata = std::map<std::string, std::string>;

// One tensor's header entry plus its bytes inside the file.
struct TensorView {
  std::string name;
  TensorDtype dtype = TensorDtype::F32;
  std::vector<std::int64_t> shape;   // empty for a scalar
  std::uint64_t begin = 0, end = 0;  // data_offsets, relative to the data section
  std::span<const std::byte> bytes;  // the tensor's data (little-endian, row-major)

  std::int64_t numel() const;
};

// A parsed and validated header. Tensor offsets are relative to the data section, which starts
// at byte `data_start` of the file.
struct SafetensorsHeader {
  std::vector<TensorView> tensors;  // sorted by name; `bytes` point into the parsed buffer
  SafetensorsMetadata metadata;     // empty when the file has no __metadata__
  std::uint64_t data_start = 0;     // 8 + header length
};

// Parses and validates a whole file held in memory. `origin` names it in error messages.
// Throws Error(ModelFormat) naming origin and the offending tensor or field.
SafetensorsHeader parse_safetensors(std::span<const std::byte> file_bytes, std::string_view origin);

// A validated safetensors file kept in memory (memory-mapped, or an owned copy). Copies are cheap
// and share the same mapping, which stays alive as long as any copy or keep_alive() handle does.
class SafetensorsFile {
 public:
  // Maps `path` (private copy-on-write mapping, so callers may write to tensor memory without
  // touching the file). Throws Error(Input) when unreadable, Error(ModelFormat) when malformed.
  static SafetensorsFile open(const std::filesystem::path& path);
  // Validates an owned copy of `bytes`; for tests, fuzzing and data that is not in a file.
  static SafetensorsFile from_bytes(std::span<const std::byte> bytes, std::string origin = "<memory>");

  const std::string& origin() const { return origin_; }  // the path, for messages
  const std::vector<TensorView>& tensors() const { return header_.tensors; }  // sorted by name
  const SafetensorsMetadata& metadata() const { return header_.metadata; }
  const TensorView* find(std::string_view name) const;  // nullptr when absent
  // Throws Error(ModelFormat) naming the file and tensor when absent.
  const TensorView& at(std::string_view name) const;
  // The whole file's bytes.
  std::span<const std::byte> file_bytes() const;
  // Holding this keeps the mapping (and so every TensorView::bytes) valid.
  std::shared_ptr<const void> keep_alive() const { return file_.keep_alive(); }

 private:
  SafetensorsFile(MappedFile file, std::string origin);
  MappedFile file_;
  std::string origin_;
  SafetensorsHeader header_;
};

// IEEE binary16 / bfloat16 bit patterns to float (exact; NaN and Inf preserved).
float half_to_float(std::uint16_t bits);
float bfloat16_to_float(std::uint16_t bits);
// A loadable tensor's values as float; throws Error(ModelFormat) naming `origin`, the tensor and
// its dtype when the dtype is not F32/F16/BF16.
std::vector<float> to_float32(const TensorView& tensor, std::string_view origin);

// A tensor to write; `bytes` must hold numel * dtype_size bytes, little-endian, row-major.
struct TensorToWrite {
  std::string name;
  TensorDtype dtype = TensorDtype::F32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> bytes;
};

// The complete file bytes, identical to what the reference library writes for the same tensors
// and at most one metadata entry (it orders several in hash order; we sort them): tensors sorted
// by dtype alignment (largest first) then name, header JSON padded with spaces to a multiple of 8.
// Throws Error(Other) naming `origin` and the tensor for duplicate names, the reserved name
// "__metadata__", negative dims or a byte count that does not match the shape.
std::string serialize_safetensors(std::span<const TensorToWrite> tensors, const SafetensorsMetadata& metadata = {},
                                  std::string_view origin = "<memory>");
// Same bytes, streamed to `path` through write_atomic (no whole-file copy in memory).
void write_safetensors(const std::filesystem::path& path, std::span<const TensorToWrite> tensors,
                       const SafetensorsMetadata& metadata = {});

}  // namespace rankemb::io
