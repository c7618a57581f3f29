// rankemb::io GGUF: reading the model files of llama.cpp and most local-LLM users (GGUF v2 and
// v3, little-endian) without libtorch. The reader maps the file and validates everything before
// anything is used: every string length, array count, tensor dimension, type, offset and size is
// checked against the bytes that are left, duplicate keys and tensor names are refused, tensor
// data must lie inside the file at the declared alignment and must not overlap.
// Format: "GGUF", u32 version, u64 tensor count, u64 key/value count, the key/value pairs
// (u64-length string key, u32 value type, value), the tensor infos (name, u32 n_dims, u64 ne[n],
// u32 ggml type, u64 offset), padding to `general.alignment` (default 32), then the data.
// Dequantizing tensor data lives in ggml_quants.h; mapping a file onto a model lives in models/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rankemb/io/mapped_file.h"

namespace rankemb::io {

// The metadata value types of the format, by their on-disk codes.
enum class GgufType : std::uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view gguf_type_name(GgufType type);  // "u32", "string", "array", ...

// One metadata value. Integers (and bools) are held in `integer`, floats in `real`; arrays hold
// their elements in `strings` (string arrays) or `numbers` (every numeric or bool array, as
// double: exact for the int32 token types and float32 scores models carry). Arrays of arrays
// are refused by the reader.
struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType element_type = GgufType::U32;  // when type == Array
  std::int64_t integer = 0;               // U64 values above INT64_MAX are refused
  double real = 0;
  std::string string;
  std::vector<std::string> strings;
  std::vector<double> numbers;

  bool is_integer() const;  // U8..I64 (not Bool)
  bool is_number() const;   // integers and floats
  std::size_t array_size() const { return type == GgufType::Array ? strings.size() + numbers.size() : 0; }
};

using GgufMetadata = std::map<std::string, GgufValue, std::less<>>;

struct GgufTensor {
  std::string name;
  std::uint32_t type = 0;          // a GgmlType code (ggml_quants.h); unknown codes are refused
  std::vector<std::int64_t> ne;    // ggml order: ne[0] is the fastest-varying (row length)
  std::uint64_t offset = 0;        // relative to the data section
  std::span<const std::byte> bytes;

  std::int64_t numel() const;
  // PyTorch order (ne reversed): [rows, row length] for a matrix.
  std::vector<std::int64_t> shape() const;
};

class GgufFile {
 public:
  // Maps and validates `path`. Throws Error(Input) when unreadable, Error(ModelFormat) naming the
  // file and the key, tensor or byte offset when malformed.
  static GgufFile open(const std::filesystem::path& path);
  // Validates an owned copy of `bytes` (tests, fuzzing).
  static GgufFile from_bytes(std::span<const std::byte> bytes, std::string origin = "<memory>");
  // Whether `path` starts with the GGUF magic (false for directories and unreadable files).
  static bool has_magic(const std::filesystem::path& path);

  const std::string& origin() const { return origin_; }
  std::uint32_t version() const { return version_; }
  std::uint32_t alignment() const { return alignment_; }
  std::uint64_t data_start() const { return data_start_; }
  const GgufMetadata& metadata() const { return metadata_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }  // in file order
  std::span<const std::byte> file_bytes() const { return file_.bytes(); }
  std::shared_ptr<const void> keep_alive() const { return file_.keep_alive(); }

  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  const GgufTensor* find_tensor(std::string_view name) const;

  // Typed getters: nullopt when the key is absent; Error(ModelFormat) naming the file and key
  // when it holds another type (any integer type for integer(), any number for number()).
  std::optional<std::string> string(std::string_view key) const;
  std::optional<std::int64_t> integer(std::string_view key) const;
  std::optional<double> number(std::string_view key) const;
  std::optional<bool> boolean(std::string_view key) const;
  const std::vector<std::string>* strings(std::string_view key) const;  // a string array
  const std::vector<double>* numbers(std::string_view key) const;       // a numeric array
  // Like string()/integer() but the key is required.
  std::string require_string(std::string_view key) const;
  std::int64_t require_integer(std::string_view key) const;

 private:
  GgufFile(MappedFile file, std::string origin);
  void parse();
  MappedFile file_;
  std::string origin_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = 32;
  std::uint64_t data_start_ = 0;
  GgufMetadata metadata_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, std::size_t, std::less<>> tensor_index_;
};

}  // namespace rankemb::io
