#include "rankemb/io/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "rankemb/io/ggml_quants.h"
#include "rankemb/util/error.h"

namespace rankemb::io {

static_assert(std::endian::native == std::endian::little, "GGUF is read as little-endian; add byte swapping");

namespace {

constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr std::size_t kMaxDims = 4;           // GGML_MAX_DIMS
constexpr std::uint32_t kMaxAlignment = 1u << 16;

// A bounds-checked little-endian cursor over the file; every read names the byte offset.
class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::string& origin) : bytes_(bytes), origin_(origin) {}

  std::uint64_t pos() const { return pos_; }
  std::uint64_t left() const { return bytes_.size() - pos_; }

  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(std::string_view what) {
    const auto n = read<std::uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }

  // Fails unless `n` more bytes exist (checked before anything of that size is allocated).
  void need(std::uint64_t n, std::string_view what) const {
    if (n > left())
      fail(ErrorCode::ModelFormat, "{}: {} at byte {} needs {} bytes, only {} left in the file", origin_, what, pos_, n, left());
  }

  [[noreturn]] void error(std::string_view message) const {
    fail(ErrorCode::ModelFormat, "{}: at byte {}: {}", origin_, pos_, message);
  }

 private:
  std::span<const std::byte> bytes_;
  const std::string& origin_;
  std::uint64_t pos_ = 0;
};

// Bytes the smallest value of a type takes (arrays: their 12-byte header; strings: the length).
std::uint64_t min_value_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: case GgufType::String: return 8;
    case GgufType::Array: return 12;
  }
  return 1;
}

bool known_type(std::uint32_t t) { return t <= 12; }

// Reads one scalar of type `t` into `v` (integer or real or string).
void read_scalar(Cursor& c, GgufType t, GgufValue& v, std::string_view what) {
  switch (t) {
    case GgufType::U8: v.integer = c.read<std::uint8_t>(what); break;
    case GgufType::I8: v.integer = c.read<std::int8_t>(what); break;
    case GgufType::U16: v.integer = c.read<std::uint16_t>(what); break;
    case GgufType::I16: v.integer = c.read<std::int16_t>(what); break;
    case GgufType::U32: v.integer = c.read<std::uint32_t>(what); break;
    case GgufType::I32: v.integer = c.read<std::int32_t>(what); break;
    case GgufType::I64: v.integer = c.read<std::int64_t>(what); break;
    case GgufType::U64: {
      const auto u = c.read<std::uint64_t>(what);
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        c.error(fmt::format("{}: u64 value {} is out of range", what, u));
      v.integer = static_cast<std::int64_t>(u);
      break;
    }
    case GgufType::F32: v.real = c.read<float>(what); break;
    case GgufType::F64: v.real = c.read<double>(what); break;
    case GgufType::Bool: {
      const auto b = c.read<std::uint8_t>(what);
      if (b > 1) c.error(fmt::format("{}: bool byte is {}, not 0 or 1", what, b));
      v.integer = b;
      break;
    }
    case GgufType::String: v.string = c.read_string(what); break;
    case GgufType::Array: c.error(fmt::format("{}: arrays of arrays are not supported", what));
  }
}

GgufValue read_value(Cursor& c, const std::string& key) {
  GgufValue v;
  const auto type = c.read<std::uint32_t>("value type of " + key);
  if (!known_type(type)) c.error(fmt::format("key \"{}\": unknown value type {}", key, type));
  v.type = static_cast<GgufType>(type);
  if (v.type != GgufType::Array) {
    read_scalar(c, v.type, v, "value of key \"" + key + "\"");
    return v;
  }
  const auto elem = c.read<std::uint32_t>("array type of " + key);
  if (!known_type(elem)) c.error(fmt::format("key \"{}\": unknown array element type {}", key, elem));
  v.element_type = static_cast<GgufType>(elem);
  if (v.element_type == GgufType::Array) c.error(fmt::format("key \"{}\": arrays of arrays are not supported", key));
  const auto n = c.read<std::uint64_t>("array length of " + key);
  // Every element takes at least min_value_size bytes: refuse a count the file cannot hold.
  if (n > c.left() / min_value_size(v.element_type))
    c.error(fmt::format("key \"{}\": array of {} {} elements does not fit in the {} bytes left", key, n,
                        gguf_type_name(v.element_type), c.left()));
  const std::string what = "element of key \"" + key + "\"";
  GgufValue e;
  if (v.element_type == GgufType::String) {
    v.strings.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) v.strings.push_back(c.read_string(what));
  } else {
    v.numbers.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      read_scalar(c, v.element_type, e, what);
      const bool real = v.element_type == GgufType::F32 || v.element_type == GgufType::F64;
      v.numbers.push_back(real ? e.real : static_cast<double>(e.integer));
    }
  }
  return v;
}

}  // namespace

std::string_view gguf_type_name(GgufType type) {
  static constexpr std::string_view kNames[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<std::uint32_t>(type);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

bool GgufValue::is_integer() const {
  return type != GgufType::Bool && type != GgufType::F32 && type != GgufType::F64 && type != GgufType::String &&
         type != GgufType::Array;
}

bool GgufValue::is_number() const { return is_integer() || type == GgufType::F32 || type == GgufType::F64; }

std::int64_t GgufTensor::numel() const {
  std::int64_t n = 1;
  for (auto d : ne) n *= d;
  return n;
}

std::vector<std::int64_t> GgufTensor::shape() const { return {ne.rbegin(), ne.rend()}; }

GgufFile::GgufFile(MappedFile file, std::string origin) : file_(std::move(file)), origin_(std::move(origin)) { parse(); }

GgufFile GgufFile::open(const std::filesystem::path& path) { return {MappedFile::open(path), path.string()}; }

GgufFile GgufFile::from_bytes(std::span<const std::byte> bytes, std::string origin) {
  return {MappedFile::copy_of(bytes), std::move(origin)};
}

bool GgufFile::has_magic(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

void GgufFile::parse() {
  const auto bytes = file_.bytes();
  Cursor c(bytes, origin_);
  if (bytes.size() < 4 || c.read<std::uint32_t>("magic") != kMagic)
    fail(ErrorCode::ModelFormat, "{}: not a GGUF file (no \"GGUF\" magic)", origin_);
  version_ = c.read<std::uint32_t>("version");
  if (version_ == 1) fail(ErrorCode::ModelFormat, "{}: GGUF version 1 is not supported (2 and 3 are)", origin_);
  if (version_ != 2 && version_ != 3) {
    if (__builtin_bswap32(version_) == 2 || __builtin_bswap32(version_) == 3)
      fail(ErrorCode::ModelFormat, "{}: big-endian GGUF is not supported", origin_);
    fail(ErrorCode::ModelFormat, "{}: unknown GGUF version {} (2 and 3 are supported)", origin_, version_);
  }
  const auto n_tensors = c.read<std::uint64_t>("tensor count");
  const auto n_kv = c.read<std::uint64_t>("key/value count");
  // A key/value takes >= 8 + 4 + 1 bytes and a tensor info >= 8 + 4 + 4 + 8 bytes.
  if (n_kv > c.left() / 13) c.error(fmt::format("{} key/value pairs cannot fit in the file", n_kv));
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string(fmt::format("key {}", i));
    if (metadata_.contains(key)) c.error(fmt::format("duplicate key \"{}\"", key));
    GgufValue value = read_value(c, key);
    metadata_.emplace(std::move(key), std::move(value));
  }
  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::U32 || a->integer == 0 || (a->integer & (a->integer - 1)) != 0 || a->integer > kMaxAlignment)
      fail(ErrorCode::ModelFormat, "{}: general.alignment must be a u32 power of two up to {}", origin_, kMaxAlignment);
    alignment_ = static_cast<std::uint32_t>(a->integer);
  }
  if (n_tensors > c.left() / 24) c.error(fmt::format("{} tensor infos cannot fit in the file", n_tensors));
  tensors_.reserve(n_tensors);
  std::vector<std::uint64_t> sizes;  // bytes of each tensor, before its view is made
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = c.read_string(fmt::format("name of tensor {}", i));
    const std::string what = "tensor \"" + t.name + "\"";
    if (tensor_index_.contains(t.name)) c.error("duplicate " + what);
    const auto n_dims = c.read<std::uint32_t>(what + " n_dims");
    if (n_dims == 0 || n_dims > kMaxDims) c.error(fmt::format("{}: {} dimensions (1 to {} allowed)", what, n_dims, kMaxDims));
    std::int64_t numel = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto ne = c.read<std::uint64_t>(what + " dimension");
      if (ne > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          (ne != 0 && static_cast<std::uint64_t>(numel) > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / ne))
        c.error(fmt::format("{}: element count overflows", what));
      numel *= static_cast<std::int64_t>(ne);
      t.ne.push_back(static_cast<std::int64_t>(ne));
    }
    t.type = c.read<std::uint32_t>(what + " type");
    const GgmlTypeInfo* info = ggml_type_info(t.type);
    if (!info) c.error(fmt::format("{}: unknown ggml type {}", what, t.type));
    if (t.ne[0] % info->block_size != 0)
      c.error(fmt::format("{}: row length {} is not a multiple of the {} block size {}", what, t.ne[0], info->name, info->block_size));
    t.offset = c.read<std::uint64_t>(what + " offset");
    if (t.offset % alignment_ != 0) c.error(fmt::format("{}: offset {} is not a multiple of the alignment {}", what, t.offset, alignment_));
    // numel < 2^63 and type_size <= 292, so the byte count fits in 128 bits; check in two steps.
    const auto blocks = static_cast<std::uint64_t>(numel) / info->block_size;
    if (blocks > std::numeric_limits<std::uint64_t>::max() / info->type_size) c.error(what + ": byte size overflows");
    sizes.push_back(blocks * info->type_size);
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }
  data_start_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_start_ > bytes.size()) fail(ErrorCode::ModelFormat, "{}: the file ends before its data section", origin_);
  const std::uint64_t data_size = n_tensors > 0 ? bytes.size() - data_start_ : 0;
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    GgufTensor& t = tensors_[i];
    const std::uint64_t size = sizes[i];
    if (t.offset > data_size || size > data_size - t.offset)
      fail(ErrorCode::ModelFormat, "{}: tensor \"{}\" ({} bytes at data offset {}) runs past the end of the file ({} data bytes)",
           origin_, t.name, size, t.offset, data_size);
    t.bytes = bytes.subspan(data_start_ + t.offset, size);
  }
  std::vector<const GgufTensor*> by_offset;
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensor& a = *by_offset[i - 1];
    if (a.offset + a.bytes.size() > by_offset[i]->offset)
      fail(ErrorCode::ModelFormat, "{}: tensors \"{}\" and \"{}\" overlap", origin_, a.name, by_offset[i]->name);
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
[[noreturn]] void wrong_type(const std::string& origin, std::string_view key, std::string_view expected, const GgufValue& v) {
  const std::string got = v.type == GgufType::Array ? fmt::format("array of {}", gguf_type_name(v.element_type))
                                                    : std::string(gguf_type_name(v.type));
  fail(ErrorCode::ModelFormat, "{}: key \"{}\" must be {}, got {}", origin, key, expected, got);
}
}  // namespace

std::optional<std::string> GgufFile::string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::String) wrong_type(origin_, key, "a string", *v);
  return v->string;
}

std::optional<std::int64_t> GgufFile::integer(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) wrong_type(origin_, key, "an integer", *v);
  return v->integer;
}

std::optional<double> GgufFile::number(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(origin_, key, "a number", *v);
  return v->is_integer() ? static_cast<double>(v->integer) : v->real;
}

std::optional<bool> GgufFile::boolean(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::Bool) wrong_type(origin_, key, "a bool", *v);
  return v->integer != 0;
}

const std::vector<std::string>* GgufFile::strings(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::Array || v->element_type != GgufType::String) wrong_type(origin_, key, "an array of strings", *v);
  return &v->strings;
}

const std::vector<double>* GgufFile::numbers(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::Array || v->element_type == GgufType::String) wrong_type(origin_, key, "an array of numbers", *v);
  return &v->numbers;
}

std::string GgufFile::require_string(std::string_view key) const {
  if (auto s = string(key)) return *s;
  fail(ErrorCode::ModelFormat, "{}: missing key \"{}\"", origin_, key);
}

std::int64_t GgufFile::require_integer(std::string_view key) const {
  if (auto i = integer(key)) return *i;
  fail(ErrorCode::ModelFormat, "{}: missing key \"{}\"", origin_, key);
}

}  // namespace rankemb::io
