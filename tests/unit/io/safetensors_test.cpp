#include "rankemb/io/safetensors.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace io = rankemb::io;
namespace fs = std::filesystem;
using rankemb::ErrorCode;

namespace {

std::span<const std::byte> as_bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

// A file: u64 header length, the header text, then `data_size` bytes of data.
std::string make_file(std::string_view header, std::size_t data_size = 0) {
  std::string out(8, '\0');
  std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  out += header;
  out.append(data_size, '\x01');
  return out;
}

fs::path fixture() { return rankemb::test::fixtures_dir() / "io" / "mixed.safetensors"; }

// Exact comparison that also tells -0.0 from 0.0.
bool same_float(float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }

}  // namespace

TEST(SafetensorsDtype, NamesSizesAndLoadability) {
  EXPECT_EQ(io::dtype_name(io::TensorDtype::BF16), "BF16");
  EXPECT_EQ(io::parse_dtype("F8_E4M3"), io::TensorDtype::F8_E4M3);
  EXPECT_EQ(io::parse_dtype("f32"), std::nullopt);  // names are case-sensitive, as in the spec
  EXPECT_EQ(io::dtype_size(io::TensorDtype::U64), 8u);
  EXPECT_EQ(io::dtype_size(io::TensorDtype::Bool), 1u);
  EXPECT_TRUE(io::dtype_is_loadable(io::TensorDtype::F16));
  EXPECT_FALSE(io::dtype_is_loadable(io::TensorDtype::I64));
}

TEST(SafetensorsHalf, ConvertsSpecialValues) {
  EXPECT_EQ(io::half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(io::half_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(io::half_to_float(0x0001), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(io::half_to_float(0x03ff), 1023 * 0x1p-24f);  // largest subnormal
  EXPECT_TRUE(std::signbit(io::half_to_float(0x8000)));
  EXPECT_TRUE(std::isinf(io::half_to_float(0xfc00)));
  EXPECT_TRUE(std::isnan(io::half_to_float(0x7e00)));
  EXPECT_EQ(io::bfloat16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(io::bfloat16_to_float(0xc020), -2.5f);
}

// Every tensor of the reference library's file, against the values it was written from.
TEST(SafetensorsRead, MatchesReferenceFixture) {
  auto expected = io::read_json(rankemb::test::fixtures_dir() / "io" / "mixed.expected.json");
  auto file = io::SafetensorsFile::open(fixture());
  EXPECT_EQ(file.metadata(), (io::SafetensorsMetadata{{"format", "pt"}}));
  ASSERT_EQ(file.tensors().size(), expected["tensors"].size());
  int mismatches = 0;
  for (const auto& [name, want] : expected["tensors"].items()) {
    const io::TensorView* t = file.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(io::dtype_name(t->dtype), want["dtype"].get<std::string>()) << name;
    EXPECT_EQ(t->shape, want["shape"].get<std::vector<std::int64_t>>()) << name;
    if (t->dtype == io::TensorDtype::I64) {
      auto values = want["values"].get<std::vector<std::int64_t>>();
      ASSERT_EQ(t->bytes.size(), values.size() * 8);
      EXPECT_EQ(std::memcmp(t->bytes.data(), values.data(), t->bytes.size()), 0) << name;
      continue;
    }
    auto got = io::to_float32(*t, file.origin());
    auto values = want["values"].get<std::vector<double>>();
    ASSERT_EQ(got.size(), values.size()) << name;
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (!same_float(got[i], static_cast<float>(values[i])) && ++mismatches <= 5)
        ADD_FAILURE() << name << "[" << i << "]: expected " << values[i] << ", got " << got[i];
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(file.at("scalar").numel(), 1);
  EXPECT_EQ(file.at("empty").numel(), 0);
  EXPECT_TRUE(file.at("empty").bytes.empty());
}

// Our writer must produce the reference library's bytes exactly (order, JSON, padding).
TEST(SafetensorsWrite, MatchesReferenceBytes) {
  std::string reference = io::read_file(fixture());
  auto file = io::SafetensorsFile::from_bytes(as_bytes(reference), "mixed");
  std::vector<io::TensorToWrite> tensors;
  for (const auto& t : file.tensors()) tensors.push_back({t.name, t.dtype, t.shape, t.bytes});
  std::reverse(tensors.begin(), tensors.end());  // input order must not matter
  EXPECT_TRUE(io::serialize_safetensors(tensors, file.metadata()) == reference);

  rankemb::test::TempDir tmp;
  const fs::path dir = tmp.path();
  io::write_safetensors(dir / "out.safetensors", tensors, file.metadata());
  EXPECT_TRUE(io::read_file(dir / "out.safetensors") == reference);
}

TEST(SafetensorsWrite, RoundTripsAllDtypesAndMetadata) {
  std::vector<std::string> storage;
  std::vector<io::TensorToWrite> tensors;
  const io::TensorDtype all[] = {io::TensorDtype::Bool, io::TensorDtype::U8,  io::TensorDtype::I8,  io::TensorDtype::F8_E5M2, io::TensorDtype::F8_E4M3,
                           io::TensorDtype::I16,  io::TensorDtype::U16, io::TensorDtype::F16, io::TensorDtype::BF16,    io::TensorDtype::I32,
                           io::TensorDtype::U32,  io::TensorDtype::F32, io::TensorDtype::F64, io::TensorDtype::I64,     io::TensorDtype::U64};
  storage.reserve(std::size(all));
  for (io::TensorDtype d : all) {
    std::string bytes;
    for (std::size_t i = 0; i < 3 * io::dtype_size(d); ++i) bytes += static_cast<char>(i * 7 + static_cast<int>(d));
    storage.push_back(bytes);
    tensors.push_back({fmt::format("t.{}\n\"q\"", io::dtype_name(d)), d, {3}, as_bytes(storage.back())});
  }
  tensors.push_back({"scalar", io::TensorDtype::F32, {}, as_bytes(std::string_view("\0\0\x80?", 4))});
  tensors.push_back({"empty", io::TensorDtype::F16, {2, 0}, {}});
  io::SafetensorsMetadata metadata{{"b", "2"}, {"a", "caf\xc3\xa9\t"}};
  std::string bytes = io::serialize_safetensors(tensors, metadata);
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);  // padded like the reference writer
  auto file = io::SafetensorsFile::from_bytes(as_bytes(bytes));
  EXPECT_EQ(file.metadata(), metadata);
  ASSERT_EQ(file.tensors().size(), tensors.size());
  for (const auto& want : tensors) {
    const io::TensorView& t = file.at(want.name);
    EXPECT_EQ(t.dtype, want.dtype) << want.name;
    EXPECT_EQ(t.shape, want.shape) << want.name;
    EXPECT_TRUE(std::equal(t.bytes.begin(), t.bytes.end(), want.bytes.begin(), want.bytes.end())) << want.name;
    // Each tensor aligned to its element size within the data section, as the reference lays out.
    EXPECT_EQ(t.begin % io::dtype_size(t.dtype), 0u) << want.name;
  }
  EXPECT_EQ(io::to_float32(file.at("scalar"), "x"), std::vector<float>{1.0f});
}

TEST(SafetensorsWrite, RejectsBadTensors) {
  std::string four(4, '\0');
  auto expect_error = [](std::vector<io::TensorToWrite> tensors, std::string_view needle) {
    try {
      io::serialize_safetensors(tensors, {}, "out.safetensors");
      ADD_FAILURE() << "expected an error containing " << needle;
    } catch (const rankemb::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Other);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("out.safetensors"), std::string::npos) << e.what();
    }
  };
  expect_error({{"a", io::TensorDtype::F32, {1}, as_bytes(four)}, {"a", io::TensorDtype::F32, {1}, as_bytes(four)}}, "duplicate");
  expect_error({{"__metadata__", io::TensorDtype::F32, {1}, as_bytes(four)}}, "reserved");
  expect_error({{"w", io::TensorDtype::F32, {2}, as_bytes(four)}}, "\"w\"");
  expect_error({{"neg", io::TensorDtype::U8, {-4}, as_bytes(four)}}, "\"neg\"");
  expect_error({{"bad\xff", io::TensorDtype::U8, {4}, as_bytes(four)}}, "UTF-8");
}

TEST(SafetensorsRead, LoadRefusesUnsupportedDtype) {
  auto file = io::SafetensorsFile::open(fixture());
  try {
    io::to_float32(file.at("ids"), file.origin());
    FAIL() << "expected an error";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ModelFormat);
    EXPECT_NE(std::string(e.what()).find("\"ids\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("I64"), std::string::npos) << e.what();
  }
  try {
    file.at("missing.weight");
    FAIL() << "expected an error";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ModelFormat);
    EXPECT_NE(std::string(e.what()).find("missing.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mixed.safetensors"), std::string::npos) << e.what();
  }
}

// Files the reference library accepts (each checked with safetensors 0.4.5's deserialize()).
TEST(SafetensorsRead, AcceptsEdgeCases) {
  auto parse = [](const std::string& bytes) { return io::parse_safetensors(as_bytes(bytes), "edge"); };
  EXPECT_TRUE(parse(make_file("{}")).tensors.empty());
  EXPECT_TRUE(parse(make_file("{}      ")).tensors.empty());  // trailing space padding
  EXPECT_TRUE(parse(make_file(" \n{}")).tensors.empty());     // the spec says '{' first; the library allows this
  // numel 0 (no overflow although 2^62 * 4 bytes would overflow): counted like the library does
  EXPECT_EQ(parse(make_file(R"({"w":{"dtype":"F32","shape":[4611686018427387904,0],"data_offsets":[0,0]}})")).tensors.size(), 1u);
  EXPECT_TRUE(parse(make_file(R"({"__metadata__":null})")).metadata.empty());
  auto two_empty = parse(make_file(
      R"({"b":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"I8","shape":[0,5],"data_offsets":[0,0]}})"));
  ASSERT_EQ(two_empty.tensors.size(), 2u);
  EXPECT_EQ(two_empty.tensors[0].name, "a");  // sorted by name
  // Unknown per-tensor fields are ignored; tensors need not be listed in offset order.
  auto unordered = parse(make_file(
      R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[2,4],"extra":1},"y":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
      4));
  ASSERT_EQ(unordered.tensors[0].name, "x");
  EXPECT_EQ(unordered.tensors[0].bytes.data(), unordered.tensors[1].bytes.data() + 2);
}

struct BadFile {
  const char* label;
  std::string bytes;
  std::vector<const char*> needles;  // all must appear in the message
};

// Malformed files: each must give Error(ModelFormat) naming the file and the tensor or field.
// safetensors 0.4.5 rejects all of them too, except duplicate keys, where it keeps the last one
// (the spec forbids duplicates, so we refuse such files).
TEST(SafetensorsRead, RejectsMalformedFiles) {
  std::string huge_len(8, '\0');
  std::uint64_t n = 100'000'001;
  std::memcpy(huge_len.data(), &n, 8);
  huge_len += "{}";
  std::string past_end = make_file("{}");
  past_end[0] = 9;
  std::string truncated = io::read_file(fixture());
  truncated.resize(truncated.size() - 3);
  std::string trailing = io::read_file(fixture()) + "polyglot";
  auto one = [](std::string_view info, std::size_t data) { return make_file(fmt::format(R"({{"w":{}}})", info), data); };

  std::vector<BadFile> cases = {
      {"short", "\x02\0\0\0{}", {"shorter than the 8-byte"}},
      {"empty file", "", {"0 bytes"}},
      {"header past end", past_end, {"header length 9", "past the end"}},
      {"header too large", huge_len, {"exceeds the 100000000-byte limit"}},
      {"invalid json", make_file(R"({"w":{"dtype":)"), {"not valid JSON"}},
      {"not utf-8", make_file("{\"w\xff\":{}}"), {"not valid JSON"}},
      {"zero header", make_file(""), {"not valid JSON"}},
      {"not an object", make_file("[1,2]"), {"expected an object"}},
      {"entry not object", one("[1]", 0), {"\"w\"", "must be an object"}},
      {"unknown dtype", one(R"({"dtype":"F17","shape":[1],"data_offsets":[0,4]})", 4), {"\"w\"", "unknown dtype \"F17\""}},
      {"dtype not string", one(R"({"dtype":4,"shape":[1],"data_offsets":[0,4]})", 4), {"\"w\"", "dtype must be a string"}},
      {"missing dtype", one(R"({"shape":[1],"data_offsets":[0,4]})", 4), {"\"w\"", "missing field \"dtype\""}},
      {"missing shape", one(R"({"dtype":"F32","data_offsets":[0,4]})", 4), {"\"w\"", "missing field \"shape\""}},
      {"shape not list", one(R"({"dtype":"F32","shape":4,"data_offsets":[0,16]})", 16), {"\"w\"", "shape must be a list"}},
      {"negative dim", one(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", 4), {"\"w\"", "shape", "non-negative"}},
      {"float dim", one(R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})", 4), {"\"w\"", "shape", "1.0"}},
      {"offsets one", one(R"({"dtype":"F32","shape":[1],"data_offsets":[4]})", 4), {"\"w\"", "data_offsets must be [begin, end]"}},
      {"offsets three", one(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", 8), {"\"w\"", "[begin, end]"}},
      {"offsets negative", one(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", 4), {"\"w\"", "data_offsets"}},
      {"end before begin", one(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", 8), {"\"w\"", "end before begin"}},
      {"size mismatch", one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})", 8), {"\"w\"", "needs 12 bytes", "span 8"}},
      {"bf16 size", one(R"({"dtype":"BF16","shape":[2,2],"data_offsets":[0,16]})", 16), {"\"w\"", "needs 8 bytes"}},
      {"shape overflow", one(R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]})", 0),
       {"\"w\"", "too many"}},
      {"offsets out of range", one(R"({"dtype":"F32","shape":[1],"data_offsets":[16,20]})", 8), {"\"w\"", "out of range"}},
      {"past data", one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})", 10), {"\"w\"", "run past", "truncated"}},
      {"truncated real file", truncated, {"\"half.vector\"", "truncated"}},
      {"trailing bytes", trailing, {"8 trailing bytes"}},
      {"gap at start", one(R"({"dtype":"F32","shape":[1],"data_offsets":[4,8]})", 8), {"\"w\"", "gap", "bytes [0, 4)"}},
      {"gap between",
       make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                 12),
       {"\"b\"", "gap", "bytes [4, 8)"}},
      {"overlap",
       make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                 12),
       {"\"b\"", "overlap", "\"a\""}},
      {"same offsets",
       make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                 4),
       {"\"b\"", "overlap"}},
      {"duplicate name",
       make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                 8),
       {"duplicate key \"a\""}},
      {"duplicate field", one(R"({"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]})", 4), {"duplicate key \"dtype\""}},
      {"metadata not object", make_file(R"({"__metadata__":[1]})"), {"__metadata__", "object"}},
      {"metadata value", make_file(R"({"__metadata__":{"epoch":3}})"), {"__metadata__", "\"epoch\"", "string"}},
  };
  for (const auto& c : cases) {
    try {
      io::parse_safetensors(as_bytes(c.bytes), "case.safetensors");
      ADD_FAILURE() << c.label << ": accepted";
    } catch (const rankemb::Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::ModelFormat) << c.label;
      std::string what = e.what();
      EXPECT_NE(what.find("case.safetensors"), std::string::npos) << c.label << ": " << what;
      for (const char* needle : c.needles) EXPECT_NE(what.find(needle), std::string::npos) << c.label << ": " << what;
    }
  }
}

TEST(SafetensorsRead, OpenNamesThePath) {
  rankemb::test::TempDir tmp;
  const fs::path dir = tmp.path();
  io::write_atomic(dir / "bad.safetensors", make_file("[]"));
  try {
    io::SafetensorsFile::open(dir / "bad.safetensors");
    ADD_FAILURE() << "expected an error";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ModelFormat);
    EXPECT_NE(std::string(e.what()).find((dir / "bad.safetensors").string()), std::string::npos) << e.what();
  }
  io::write_atomic(dir / "empty.safetensors", "");
  EXPECT_THROW(io::SafetensorsFile::open(dir / "empty.safetensors"), rankemb::Error);
  try {
    io::SafetensorsFile::open(dir / "missing.safetensors");
    ADD_FAILURE() << "expected an error";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Input);
  }
}

// Tensor views stay valid while any copy of the file (or keep_alive handle) exists.
TEST(SafetensorsRead, ViewsOutliveTheOpeningObject) {
  std::shared_ptr<const void> keep;
  io::TensorView view;
  {
    auto file = io::SafetensorsFile::open(fixture());
    keep = file.keep_alive();
    view = file.at("encoder.layer.0.bias");
  }
  EXPECT_EQ(io::to_float32(view, "x")[0], 0.5f);
}
