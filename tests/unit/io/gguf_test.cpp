// GGUF reader and ggml dequantization. Parity: tests/fixtures/io/gguf_quants.gguf was written by
// gguf-py and its expected values come from gguf-py's own dequantize()
// (scripts/regen/gguf_fixture.py); every value must match bit for bit. The malformed-file cases
// build small files with the writer below and break one field each.
#include "rankemb/io/gguf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/io/ggml_quants.h"
#include "rankemb/io/safetensors.h"
#include "rankemb/util/error.h"

namespace io = rankemb::io;
using rankemb::ErrorCode;

namespace {

// A minimal GGUF writer for malformed-file cases: v3, u32 values only, F32 tensors.
struct Writer {
  std::string out;
  template <typename T>
  void put(T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void str(std::string_view s) {
    put<std::uint64_t>(s.size());
    out += s;
  }
};

struct TinyTensor {
  std::string name;
  std::uint64_t ne0 = 4;
  std::uint32_t type = 0;
  std::uint64_t offset = 0;
};

std::string tiny_gguf(const std::vector<std::pair<std::string, std::uint32_t>>& kv, const std::vector<TinyTensor>& tensors,
                      std::size_t data_bytes = 64) {
  Writer w;
  w.out = "GGUF";
  w.put<std::uint32_t>(3);
  w.put<std::uint64_t>(tensors.size());
  w.put<std::uint64_t>(kv.size());
  for (const auto& [key, value] : kv) {
    w.str(key);
    w.put<std::uint32_t>(4);  // u32
    w.put<std::uint32_t>(value);
  }
  for (const auto& t : tensors) {
    w.str(t.name);
    w.put<std::uint32_t>(1);
    w.put<std::uint64_t>(t.ne0);
    w.put<std::uint32_t>(t.type);
    w.put<std::uint64_t>(t.offset);
  }
  w.out.resize((w.out.size() + 31) / 32 * 32, '\0');
  w.out.resize(w.out.size() + data_bytes, '\x01');
  return w.out;
}

io::GgufFile parse(const std::string& bytes) {
  return io::GgufFile::from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), "t.gguf");
}

void expect_format_error(const std::string& bytes, const std::string& needle) {
  try {
    parse(bytes);
    ADD_FAILURE() << "accepted a file that should fail with: " << needle;
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ModelFormat) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("t.gguf"), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Gguf, ReadsEveryMetadataTypeWrittenByGgufPy) {
  auto f = io::GgufFile::open(rankemb::test::fixtures_dir() / "io/gguf_quants.gguf");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.string("general.architecture"), "llama");
  EXPECT_EQ(f.integer("test.u8"), 200);
  EXPECT_EQ(f.integer("test.i8"), -100);
  EXPECT_EQ(f.integer("test.u16"), 60000);
  EXPECT_EQ(f.integer("test.i16"), -30000);
  EXPECT_EQ(f.integer("test.u32"), 4000000000LL);
  EXPECT_EQ(f.integer("test.i32"), -2000000000LL);
  EXPECT_EQ(f.number("test.f32"), static_cast<double>(0.1f));
  EXPECT_EQ(f.boolean("test.bool"), true);
  EXPECT_EQ(f.string("test.string"), "h\xC3\xA9llo\nworld");
  EXPECT_EQ(f.integer("test.u64"), (1LL << 40) + 3);
  EXPECT_EQ(f.integer("test.i64"), -(1LL << 40) - 5);
  EXPECT_EQ(f.number("test.f64"), 1e-300);
  EXPECT_EQ(*f.strings("test.strings"), (std::vector<std::string>{"a", "", "\xC3\xBC \xC3\x9F"}));
  EXPECT_EQ(*f.numbers("test.ints"), (std::vector<double>{1, -2, 300000}));
  EXPECT_EQ(*f.numbers("test.floats"), (std::vector<double>{0.5, -1.25}));
  EXPECT_FALSE(f.integer("absent").has_value());
  try {
    (void)f.integer("test.string");
    ADD_FAILURE() << "a string read as an integer";
  } catch (const rankemb::Error& e) {
    EXPECT_NE(std::string(e.what()).find("key \"test.string\" must be an integer, got string"), std::string::npos) << e.what();
  }
}

TEST(Gguf, DequantizesEveryTypeBitForBitLikeGgufPy) {
  auto f = io::GgufFile::open(rankemb::test::fixtures_dir() / "io/gguf_quants.gguf");
  auto expected = io::SafetensorsFile::open(rankemb::test::fixtures_dir() / "io/gguf_quants_expected.safetensors");
  ASSERT_EQ(f.tensors().size(), 13u);
  for (const auto& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.shape(), (std::vector<std::int64_t>{2, 512}));
    const io::TensorView& want = expected.at(t.name);
    std::vector<float> got(static_cast<std::size_t>(t.numel()));
    io::dequantize(*io::ggml_type_info(t.type), t.bytes, got, t.name);
    ASSERT_EQ(want.bytes.size(), got.size() * sizeof(float));
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      float w;
      std::memcpy(&w, want.bytes.data() + i * 4, 4);
      if (std::memcmp(&w, &got[i], 4) != 0 && mismatches++ < 3) ADD_FAILURE() << "element " << i << ": " << got[i] << " vs " << w;
    }
    EXPECT_EQ(mismatches, 0u);
  }
}

TEST(Gguf, RefusesTypesItCannotDequantize) {
  const io::GgmlTypeInfo* iq = io::ggml_type_info(16);  // IQ2_XXS
  ASSERT_NE(iq, nullptr);
  std::vector<std::byte> src(iq->type_size);
  std::vector<float> dst(iq->block_size);
  EXPECT_THROW(io::dequantize(*iq, src, dst, "x"), rankemb::Error);
  const io::GgmlTypeInfo* q4 = io::ggml_type_info(2);
  std::vector<float> wrong(31);
  std::vector<std::byte> block(18);
  EXPECT_THROW(io::dequantize(*q4, block, wrong, "x"), rankemb::Error);
}

TEST(Gguf, AcceptsTheTinyWriterAndChecksOffsets) {
  auto f = parse(tiny_gguf({{"general.alignment", 32}}, {{"a", 4, 0, 0}, {"b", 8, 0, 32}}));
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.find_tensor("b")->bytes.size(), 32u);
  EXPECT_EQ(f.find_tensor("b")->offset, 32u);
  EXPECT_EQ(f.find_tensor("c"), nullptr);
}

TEST(Gguf, AnEmptyTensorDecodesToNothing) {
  // GGUF allows a zero dimension; its byte and value spans are empty (data() may be null, which
  // memcpy must never see: found by fuzz_gguf_file under UBSan).
  auto f = parse(tiny_gguf({}, {{"empty", 0, 0, 0}, {"b", 4, 0, 0}}));
  const io::GgufTensor* t = f.find_tensor("empty");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->numel(), 0);
  EXPECT_TRUE(t->bytes.empty());
  for (std::uint32_t type : {0u, 1u, 2u, 30u}) {
    std::vector<float> none;
    EXPECT_NO_THROW(io::dequantize(*io::ggml_type_info(type), {}, none, "empty"));
  }
}

TEST(Gguf, RefusesMalformedFilesNamingTheField) {
  expect_format_error("GGU", "no \"GGUF\" magic");
  std::string v1 = tiny_gguf({}, {});
  v1[4] = 1;
  expect_format_error(v1, "version 1");
  std::string big_endian = tiny_gguf({}, {});
  std::swap(big_endian[4], big_endian[7]);
  expect_format_error(big_endian, "big-endian");
  expect_format_error(tiny_gguf({{"k", 1}, {"k", 2}}, {}), "duplicate key \"k\"");
  expect_format_error(tiny_gguf({{"general.alignment", 24}}, {}), "general.alignment");
  expect_format_error(tiny_gguf({}, {{"a", 4, 0, 0}, {"a", 4, 0, 32}}), "duplicate tensor \"a\"");
  expect_format_error(tiny_gguf({}, {{"a", 4, 0, 16}}), "not a multiple of the alignment");
  expect_format_error(tiny_gguf({}, {{"a", 4, 0, 0}, {"b", 16, 0, 0}}), "overlap");
  expect_format_error(tiny_gguf({}, {{"a", 1000, 0, 0}}), "runs past the end");
  expect_format_error(tiny_gguf({}, {{"a", 33, 2, 0}}), "not a multiple of the Q4_0 block size 32");
  expect_format_error(tiny_gguf({}, {{"a", 4, 99, 0}}), "unknown ggml type 99");
}

TEST(Gguf, RefusesCountsAndLengthsTheFileCannotHold) {
  // Tensor count 2^40 in a file of a few bytes: refused before anything is reserved.
  std::string many = tiny_gguf({}, {});
  std::uint64_t n = 1ULL << 40;
  std::memcpy(many.data() + 8, &n, 8);
  expect_format_error(many, "tensor infos cannot fit");
  std::string kv = tiny_gguf({}, {});
  std::memcpy(kv.data() + 16, &n, 8);
  expect_format_error(kv, "key/value pairs cannot fit");
  // A key length of 2^40.
  std::string key = tiny_gguf({{"k", 1}}, {});
  std::memcpy(key.data() + 24, &n, 8);
  expect_format_error(key, "needs 1099511627776 bytes");
}

TEST(Gguf, EveryTruncationOfARealHeaderIsACleanError) {
  const std::string whole = io::read_file(rankemb::test::fixtures_dir() / "io/gguf_quants.gguf");
  const auto f = parse(whole);
  std::size_t data_end = 0;  // gguf-py pads the data after the last tensor; a cut there is harmless
  for (const auto& t : f.tensors()) data_end = std::max<std::size_t>(data_end, f.data_start() + t.offset + t.bytes.size());
  for (std::size_t len = 0; len < data_end; len += (len < f.data_start() ? 1 : 97)) {
    EXPECT_THROW(parse(whole.substr(0, len)), rankemb::Error) << "prefix of " << len << " bytes";
  }
}
