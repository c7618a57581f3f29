#include "rankemb/io/safetensors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <set>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "rankemb/io/file.h"
#include "rankemb/util/error.h"
#include "rankemb/util/unicode.h"

namespace rankemb::io {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; add byte swapping");

namespace {

using nlohmann::json;

// The reference library refuses larger headers; matching it keeps a corrupt length from making
// us parse hundreds of megabytes of garbage.
constexpr std::uint64_t kMaxHeaderSize = 100'000'000;

struct DtypeInfo {
  TensorDtype dtype;
  std::string_view name;
  std::size_t size;
};
constexpr std::array<DtypeInfo, 15> kDtypes{{
    {TensorDtype::Bool, "BOOL", 1}, {TensorDtype::U8, "U8", 1},   {TensorDtype::I8, "I8", 1},   {TensorDtype::F8_E5M2, "F8_E5M2", 1},
    {TensorDtype::F8_E4M3, "F8_E4M3", 1}, {TensorDtype::I16, "I16", 2}, {TensorDtype::U16, "U16", 2}, {TensorDtype::F16, "F16", 2},
    {TensorDtype::BF16, "BF16", 2}, {TensorDtype::I32, "I32", 4}, {TensorDtype::U32, "U32", 4}, {TensorDtype::F32, "F32", 4},
    {TensorDtype::F64, "F64", 8},  {TensorDtype::I64, "I64", 8}, {TensorDtype::U64, "U64", 8},
}};

std::string dtype_list() {
  std::string s;
  for (const auto& d : kDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

std::string shape_str(const std::vector<std::int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// Parses JSON while rejecting duplicate keys at any level: nlohmann keeps the last duplicate
// silently, and the spec forbids them (a file that means different things to different parsers).
json parse_header_json(std::string_view text, std::string_view origin) {
  std::vector<std::set<std::string>> keys;  // one key set per open object
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: keys.emplace_back(); break;
      case json::parse_event_t::object_end: keys.pop_back(); break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!keys.back().insert(key).second) fail(ErrorCode::ModelFormat, "{}: header has duplicate key \"{}\"", origin, key);
        break;
      }
      default: break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    fail(ErrorCode::ModelFormat, "{}: header is not valid JSON: {}", origin, e.what());
  }
}

std::uint64_t read_u64(const json& v, std::string_view origin, std::string_view name, std::string_view field) {
  if (!v.is_number_unsigned())
    fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": {} must hold non-negative integers, got {}", origin, name, field,
         v.dump());
  return v.get<std::uint64_t>();
}

TensorView parse_tensor_info(const std::string& name, const json& info, std::string_view origin) {
  if (!info.is_object())
    fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": entry must be an object, got {}", origin, name, info.type_name());
  TensorView t;
  t.name = name;
  // Fields other than these three are ignored, as the reference library does.
  auto field = [&](const char* key) -> const json& {
    auto it = info.find(key);
    if (it == info.end()) fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": missing field \"{}\"", origin, name, key);
    return *it;
  };
  const json& dtype = field("dtype");
  if (!dtype.is_string()) fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": dtype must be a string, got {}", origin, name, dtype.dump());
  auto parsed = parse_dtype(dtype.get_ref<const std::string&>());
  if (!parsed)
    fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": unknown dtype {} (known: {})", origin, name, dtype.dump(), dtype_list());
  t.dtype = *parsed;

  const json& shape = field("shape");
  if (!shape.is_array())
    fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": shape must be a list of non-negative integers, got {}", origin, name,
         shape.dump());
  for (const auto& d : shape) {
    std::uint64_t dim = read_u64(d, origin, name, "shape");
    if (dim > static_cast<std::uint64_t>(INT64_MAX))
      fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": shape dimension {} is too large", origin, name, dim);
    t.shape.push_back(static_cast<std::int64_t>(dim));
  }

  const json& offsets = field("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2)
    fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": data_offsets must be [begin, end], got {}", origin, name, offsets.dump());
  t.begin = read_u64(offsets[0], origin, name, "data_offsets");
  t.end = read_u64(offsets[1], origin, name, "data_offsets");
  if (t.end < t.begin)
    fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": data_offsets [{}, {}] end before begin", origin, name, t.begin, t.end);

  // numel * dtype size must equal the span; overflow means it cannot. Same order of checked
  // multiplications as the reference (numel first), so the same shapes count as overflowing.
  std::uint64_t nbytes = 1;
  bool overflow = false;
  for (auto d : t.shape) overflow = overflow || __builtin_mul_overflow(nbytes, static_cast<std::uint64_t>(d), &nbytes);
  overflow = overflow || __builtin_mul_overflow(nbytes, static_cast<std::uint64_t>(dtype_size(t.dtype)), &nbytes);
  if (overflow || nbytes != t.end - t.begin)
    fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": shape {} of {} needs {} bytes but data_offsets [{}, {}] span {}", origin,
         name, shape_str(t.shape), dtype_name(t.dtype), overflow ? std::string("too many") : std::to_string(nbytes), t.begin,
         t.end, t.end - t.begin);
  return t;
}

SafetensorsMetadata parse_metadata(const json& m, std::string_view origin) {
  SafetensorsMetadata out;
  if (m.is_null()) return out;  // serde reads null as "no metadata"
  if (!m.is_object())
    fail(ErrorCode::ModelFormat, "{}: __metadata__ must be an object of strings, got {}", origin, m.type_name());
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string())
      fail(ErrorCode::ModelFormat, "{}: __metadata__ \"{}\" must be a string, got {}", origin, k, v.dump());
    out.emplace(k, v.get<std::string>());
  }
  return out;
}

// The reference rule: sorted by offsets, tensors tile the data section exactly.
void check_coverage(const std::vector<TensorView>& tensors, std::uint64_t data_size, std::string_view origin) {
  std::vector<const TensorView*> by_offset;
  for (const auto& t : tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorView* a, const TensorView* b) {
    return std::pair(a->begin, a->end) < std::pair(b->begin, b->end);
  });
  std::uint64_t covered = 0;
  const TensorView* prev = nullptr;
  for (const TensorView* t : by_offset) {
    if (t->begin > data_size)
      fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": data_offsets [{}, {}] are out of range (data section is {} bytes)",
           origin, t->name, t->begin, t->end, data_size);
    if (t->end > data_size)
      fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": data_offsets [{}, {}] run past the data section ({} bytes): truncated file?",
           origin, t->name, t->begin, t->end, data_size);
    if (t->begin < covered)
      fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": data_offsets [{}, {}] overlap tensor \"{}\" [{}, {}]", origin, t->name,
           t->begin, t->end, prev->name, prev->begin, prev->end);
    if (t->begin > covered)
      fail(ErrorCode::ModelFormat, "{}: tensor \"{}\": gap before data_offsets [{}, {}]: bytes [{}, {}) belong to no tensor",
           origin, t->name, t->begin, t->end, covered, t->begin);
    covered = t->end;
    prev = t;
  }
  if (covered != data_size)
    fail(ErrorCode::ModelFormat, "{}: {} trailing bytes after the last tensor belong to no tensor (data section is {} bytes)",
         origin, data_size - covered, data_size);
}

void append_json_string(std::string& out, std::string_view s) {
  // serde_json's escaping, so our header bytes match the reference writer's.
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        else out += c;
    }
  }
  out += '"';
}

// The header bytes (padded) and the tensors in file order.
std::pair<std::string, std::vector<const TensorToWrite*>> prepare(std::span<const TensorToWrite> tensors,
                                                                  const SafetensorsMetadata& metadata,
                                                                  std::string_view origin) {
  std::vector<const TensorToWrite*> order;
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__") fail(ErrorCode::Other, "{}: tensor name \"__metadata__\" is reserved", origin);
    if (!names.insert(t.name).second) fail(ErrorCode::Other, "{}: duplicate tensor name \"{}\"", origin, t.name);
    if (unicode::find_invalid_utf8(t.name)) fail(ErrorCode::Other, "{}: tensor name \"{}\" is not valid UTF-8", origin, t.name);
    std::uint64_t nbytes = dtype_size(t.dtype);
    bool bad = false;
    for (auto d : t.shape) bad = bad || d < 0 || __builtin_mul_overflow(nbytes, static_cast<std::uint64_t>(d), &nbytes);
    if (bad || nbytes != t.bytes.size())
      fail(ErrorCode::Other, "{}: tensor \"{}\": shape {} of {} does not match its {} bytes", origin, t.name, shape_str(t.shape),
           dtype_name(t.dtype), t.bytes.size());
    order.push_back(&t);
  }
  // The reference writer's order: larger alignment first, so every tensor stays aligned to its
  // element size relative to the (8-aligned) data section; then by name.
  std::sort(order.begin(), order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    if (a->dtype != b->dtype) return a->dtype > b->dtype;
    return a->name < b->name;
  });
  for (const auto& [k, v] : metadata) {
    if (unicode::find_invalid_utf8(k) || unicode::find_invalid_utf8(v))
      fail(ErrorCode::Other, "{}: metadata entry \"{}\" is not valid UTF-8", origin, k);
  }

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      append_json_string(header, k);
      header += ':';
      append_json_string(header, v);
    }
    header += '}';
  }
  std::uint64_t offset = 0;
  for (const TensorToWrite* t : order) {
    if (header.size() > 1) header += ',';
    append_json_string(header, t->name);
    header += fmt::format(R"(:{{"dtype":"{}","shape":[{}],"data_offsets":[{},{}]}})", dtype_name(t->dtype),
                          fmt::join(t->shape, ","), offset, offset + t->bytes.size());
    offset += t->bytes.size();
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  return {std::move(header), std::move(order)};
}

std::string length_prefix(std::uint64_t n) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out;
}

}  // namespace

std::string_view dtype_name(TensorDtype dtype) { return kDtypes[static_cast<std::size_t>(dtype)].name; }
std::size_t dtype_size(TensorDtype dtype) { return kDtypes[static_cast<std::size_t>(dtype)].size; }
bool dtype_is_loadable(TensorDtype dtype) { return dtype == TensorDtype::F32 || dtype == TensorDtype::F16 || dtype == TensorDtype::BF16; }

std::optional<TensorDtype> parse_dtype(std::string_view name) {
  for (const auto& d : kDtypes)
    if (d.name == name) return d.dtype;
  return std::nullopt;
}

std::int64_t TensorView::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

SafetensorsHeader parse_safetensors(std::span<const std::byte> file, std::string_view origin) {
  if (file.size() < 8)
    fail(ErrorCode::ModelFormat, "{}: file is {} bytes, shorter than the 8-byte header length", origin, file.size());
  std::uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  if (n > kMaxHeaderSize)
    fail(ErrorCode::ModelFormat, "{}: header length {} exceeds the {}-byte limit", origin, n, kMaxHeaderSize);
  if (n > file.size() - 8)
    fail(ErrorCode::ModelFormat, "{}: header length {} runs past the end of the file ({} bytes)", origin, n, file.size());
  std::string_view text(reinterpret_cast<const char*>(file.data()) + 8, n);
  json header = parse_header_json(text, origin);
  if (!header.is_object()) fail(ErrorCode::ModelFormat, "{}: header is a JSON {}, expected an object", origin, header.type_name());
  // The spec says the header starts with '{', but the reference library (0.4.5 and later) also
  // takes leading JSON white space; so do we, to accept every file it accepts.

  SafetensorsHeader out;
  out.data_start = 8 + n;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") out.metadata = parse_metadata(value, origin);
    else out.tensors.push_back(parse_tensor_info(key, value, origin));
  }
  std::uint64_t data_size = file.size() - out.data_start;
  check_coverage(out.tensors, data_size, origin);
  std::sort(out.tensors.begin(), out.tensors.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& t : out.tensors) t.bytes = file.subspan(out.data_start + t.begin, t.end - t.begin);
  return out;
}

SafetensorsFile::SafetensorsFile(MappedFile file, std::string origin) : file_(std::move(file)), origin_(std::move(origin)) {
  header_ = parse_safetensors(file_.bytes(), origin_);
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) { return {MappedFile::open(path), path.string()}; }

SafetensorsFile SafetensorsFile::from_bytes(std::span<const std::byte> bytes, std::string origin) {
  return {MappedFile::copy_of(bytes), std::move(origin)};
}

std::span<const std::byte> SafetensorsFile::file_bytes() const { return file_.bytes(); }

const TensorView* SafetensorsFile::find(std::string_view name) const {
  const auto& ts = header_.tensors;
  auto it = std::lower_bound(ts.begin(), ts.end(), name, [](const TensorView& t, std::string_view n) { return t.name < n; });
  return it != ts.end() && it->name == name ? &*it : nullptr;
}

const TensorView& SafetensorsFile::at(std::string_view name) const {
  if (const TensorView* t = find(name)) return *t;
  fail(ErrorCode::ModelFormat, "{}: no tensor named \"{}\" ({} tensors in file)", origin_, name, header_.tensors.size());
}

float half_to_float(std::uint16_t h) {
  std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // Inf / NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {
    // Subnormal half: value = mant * 2^-24, exactly representable as a normal float.
    float v = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -v : v;
  }
  return std::bit_cast<float>(bits);
}

float bfloat16_to_float(std::uint16_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }

std::vector<float> to_float32(const TensorView& t, std::string_view origin) {
  if (!dtype_is_loadable(t.dtype))
    fail(ErrorCode::ModelFormat, "{}: tensor \"{}\" has dtype {}; only F32, F16 and BF16 can be loaded", origin, t.name,
         dtype_name(t.dtype));
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  const std::byte* p = t.bytes.data();
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (t.dtype == TensorDtype::F32) {
      std::memcpy(&out[i], p + 4 * i, 4);
    } else {
      std::uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = t.dtype == TensorDtype::F16 ? half_to_float(h) : bfloat16_to_float(h);
    }
  }
  return out;
}

std::string serialize_safetensors(std::span<const TensorToWrite> tensors, const SafetensorsMetadata& metadata,
                                  std::string_view origin) {
  auto [header, order] = prepare(tensors, metadata, origin);
  std::string out = length_prefix(header.size()) + header;
  for (const TensorToWrite* t : order) out.append(reinterpret_cast<const char*>(t->bytes.data()), t->bytes.size());
  return out;
}

void write_safetensors(const std::filesystem::path& path, std::span<const TensorToWrite> tensors,
                       const SafetensorsMetadata& metadata) {
  // Not a structured binding: clang before 16 cannot capture those in a lambda.
  auto prepared = prepare(tensors, metadata, path.string());
  const std::string& header = prepared.first;
  const auto& order = prepared.second;
  write_atomic(path, [&](std::ostream& out) {
    out << length_prefix(header.size()) << header;
    for (const TensorToWrite* t : order)
      out.write(reinterpret_cast<const char*>(t->bytes.data()), static_cast<std::streamsize>(t->bytes.size()));
  });
}

}  // namespace rankemb::io
