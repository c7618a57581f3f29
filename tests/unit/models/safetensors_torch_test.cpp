#include "common/temp_dir.h"
#include "common/expect_error.h"
#include "rankemb/models/safetensors_torch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace io = rankemb::io;
namespace models = rankemb::models;
namespace fs = std::filesystem;
using rankemb::ErrorCode;

namespace {

using rankemb::test::expect_error;

fs::path fixture() { return rankemb::test::fixtures_dir() / "io" / "mixed.safetensors"; }

}  // namespace

TEST(SafetensorsTorch, LoadsReferenceFixture) {
  auto expected = io::read_json(rankemb::test::fixtures_dir() / "io" / "mixed.expected.json");
  models::NamedTensors tensors = models::load_safetensors(fixture());
  ASSERT_EQ(tensors.size(), expected["tensors"].size());
  const std::map<std::string, torch::ScalarType> types = {
      {"F32", torch::kFloat32}, {"F16", torch::kHalf}, {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}};
  int mismatches = 0;
  for (const auto& [name, want] : expected["tensors"].items()) {
    ASSERT_TRUE(tensors.count(name)) << name;
    const torch::Tensor& t = tensors.at(name);
    EXPECT_EQ(t.scalar_type(), types.at(want["dtype"].get<std::string>())) << name;
    EXPECT_EQ(t.sizes().vec(), want["shape"].get<std::vector<std::int64_t>>()) << name;
    torch::Tensor ref = t.scalar_type() == torch::kInt64
                            ? torch::tensor(want["values"].get<std::vector<std::int64_t>>(), torch::kInt64)
                            : torch::tensor(want["values"].get<std::vector<float>>(), torch::kFloat32);
    torch::Tensor got = t.reshape({-1}).to(ref.scalar_type());
    if (ref.numel() == 0 && got.numel() == 0) continue;
    if (!torch::equal(got, ref) && ++mismatches <= 5) ADD_FAILURE() << name << ": expected " << ref << "\ngot " << got;
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(tensors.at("scalar").dim(), 0);
  // -0.0 must survive (torch::equal treats it as 0.0).
  EXPECT_TRUE(std::signbit(tensors.at("half.values").reshape({-1})[1].item<float>()));
}

TEST(SafetensorsTorch, CastsFloatsOnlyAndCopiesOnRequest) {
  models::NamedTensors cast = models::load_safetensors(fixture(), {.dtype = torch::kFloat32});
  EXPECT_EQ(cast.at("half.vector").scalar_type(), torch::kFloat32);
  EXPECT_EQ(cast.at("bf16.weight").scalar_type(), torch::kFloat32);
  EXPECT_EQ(cast.at("ids").scalar_type(), torch::kInt64);  // integers keep their type
  models::NamedTensors as_bf16 = models::load_safetensors(fixture(), {.dtype = torch::kBFloat16});
  EXPECT_EQ(as_bf16.at("encoder.layer.0.weight").scalar_type(), torch::kBFloat16);

  std::string before = io::read_file(fixture());
  // Zero-copy tensors sit on private pages: writing to them must not crash or touch the file.
  models::NamedTensors mapped = models::load_safetensors(fixture());
  mapped.at("encoder.layer.0.weight").add_(1.0f);
  models::NamedTensors copied = models::load_safetensors(fixture(), {.dtype = std::nullopt, .copy = true});
  copied.at("encoder.layer.0.weight").mul_(2.0f);
  EXPECT_TRUE(io::read_file(fixture()) == before);
  EXPECT_FALSE(torch::equal(mapped.at("encoder.layer.0.weight"), models::load_safetensors(fixture()).at("encoder.layer.0.weight")));
}

TEST(SafetensorsTorch, MappedTensorsOutliveTheirFile) {
  torch::Tensor w;
  {
    auto file = io::SafetensorsFile::open(fixture());
    w = models::to_torch(file, file.at("encoder.layer.0.bias"));
  }
  EXPECT_EQ(w[0].item<float>(), 0.5f);
}

// Saving what we loaded must reproduce the reference library's file byte for byte.
TEST(SafetensorsTorch, SaveMatchesReferenceBytes) {
  rankemb::test::TempDir tmp;
  const fs::path dir = tmp.path();
  models::save_safetensors(dir / "out.safetensors", models::load_safetensors(fixture()), {{"format", "pt"}});
  EXPECT_TRUE(io::read_file(dir / "out.safetensors") == io::read_file(fixture()));
}

TEST(SafetensorsTorch, SaveLoadRoundTrip) {
  torch::manual_seed(7);
  models::NamedTensors tensors = {
      {"f32", torch::randn({3, 5})},
      {"f32.transposed", torch::randn({4, 6}).t()},  // not contiguous
      {"f16", torch::randn({7}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 3, 2}).to(torch::kBFloat16)},
      {"f64", torch::randn({2}, torch::kFloat64)},
      {"i64", torch::arange(10, torch::kInt64)},
      {"i32", torch::arange(3, torch::kInt32)},
      {"bool", torch::tensor({true, false, true})},
      {"u8", torch::arange(5, torch::kUInt8)},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::empty({0, 4})},
  };
  rankemb::test::TempDir tmp;
  const fs::path dir = tmp.path();
  models::save_safetensors(dir / "rt.safetensors", tensors, {{"step", "12"}, {"format", "pt"}});
  auto file = io::SafetensorsFile::open(dir / "rt.safetensors");
  EXPECT_EQ(file.metadata().at("step"), "12");
  models::NamedTensors back = models::load_safetensors(dir / "rt.safetensors");
  ASSERT_EQ(back.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(back.count(name)) << name;
    EXPECT_EQ(back.at(name).scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back.at(name).sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(back.at(name), t)) << name;
  }
  expect_error([&] { models::save_safetensors(dir / "c.safetensors", {{"c", torch::randn({2}, torch::kComplexFloat)}}); },
               ErrorCode::Other, {"\"c\"", "cannot store"});
}

TEST(SafetensorsTorch, LoadsShardedIndex) {
  rankemb::test::TempDir tmp;
  const fs::path dir = tmp.path();
  torch::manual_seed(3);
  models::NamedTensors a = {{"layer.0.w", torch::randn({4, 4})}, {"layer.0.b", torch::randn({4})}};
  models::NamedTensors b = {{"layer.1.w", torch::randn({4, 4}).to(torch::kBFloat16)}, {"extra.buf", torch::arange(4)}};
  models::save_safetensors(dir / "model-00001-of-00002.safetensors", a);
  models::save_safetensors(dir / "model-00002-of-00002.safetensors", b);
  nlohmann::json index = {{"metadata", {{"total_size", 144}}},
                          {"weight_map",
                           {{"layer.0.w", "model-00001-of-00002.safetensors"},
                            {"layer.0.b", "model-00001-of-00002.safetensors"},
                            {"layer.1.w", "model-00002-of-00002.safetensors"}}}};
  io::write_atomic(dir / "model.safetensors.index.json", index.dump());

  models::NamedTensors all = models::load_model_weights(dir, {.dtype = torch::kFloat32});
  ASSERT_EQ(all.size(), 4u);  // extra.buf is not in the map but its shard is loaded whole
  EXPECT_TRUE(torch::equal(all.at("layer.0.w"), a.at("layer.0.w")));
  EXPECT_TRUE(torch::equal(all.at("layer.1.w"), b.at("layer.1.w").to(torch::kFloat32)));
  EXPECT_EQ(all.at("extra.buf").scalar_type(), torch::kInt64);
  EXPECT_EQ(models::load_model_weights(dir / "model.safetensors.index.json").size(), 4u);

  // Broken indexes name the index file, the tensor and the shard.
  auto write_index = [&](const nlohmann::json& j) { io::write_atomic(dir / "bad.index.json", j.dump()); };
  write_index({{"weight_map", {{"layer.9.w", "model-00001-of-00002.safetensors"}}}});
  expect_error([&] { models::load_model_weights(dir / "bad.index.json"); }, ErrorCode::ModelFormat,
               {"bad.index.json", "\"layer.9.w\"", "model-00001-of-00002.safetensors", "does not contain"});
  models::save_safetensors(dir / "dup.safetensors", {{"layer.0.w", torch::zeros({1})}, {"other", torch::zeros({1})}});
  write_index({{"weight_map", {{"layer.0.w", "model-00001-of-00002.safetensors"}, {"other", "dup.safetensors"}}}});
  expect_error([&] { models::load_model_weights(dir / "bad.index.json"); }, ErrorCode::ModelFormat,
               {"bad.index.json", "\"layer.0.w\"", "stored in both"});
  write_index({{"weight_map", {{"w", "../../etc/model.safetensors"}}}});
  expect_error([&] { models::load_model_weights(dir / "bad.index.json"); }, ErrorCode::ModelFormat, {"relative path"});
  write_index({{"metadata", {}}});
  expect_error([&] { models::load_model_weights(dir / "bad.index.json"); }, ErrorCode::ModelFormat, {"bad.index.json", "weight_map"});
  write_index({{"weight_map", {{"w", 3}}}});
  expect_error([&] { models::load_model_weights(dir / "bad.index.json"); }, ErrorCode::ModelFormat, {"\"w\"", "string"});
  write_index({{"weight_map", {{"w", "missing.safetensors"}}}});
  expect_error([&] { models::load_model_weights(dir / "bad.index.json"); }, ErrorCode::Input, {"missing.safetensors"});

  fs::path empty_dir = dir / "empty";
  fs::create_directories(empty_dir);
  expect_error([&] { models::load_model_weights(empty_dir); }, ErrorCode::ModelFormat, {"model.safetensors.index.json"});
}

TEST(SafetensorsTorch, RefusesTypesTorchLacks) {
  std::string data(6, '\0');
  io::TensorToWrite t{"u16", io::TensorDtype::U16, {3}, std::as_bytes(std::span(data.data(), data.size()))};
  std::string bytes = io::serialize_safetensors(std::span(&t, 1));
  auto file = io::SafetensorsFile::from_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())), "u16.safetensors");
  expect_error([&] { models::to_torch(file, file.at("u16")); }, ErrorCode::ModelFormat, {"u16.safetensors", "\"u16\"", "U16"});
}

TEST(SafetensorsTorch, LoadsRealMiniLM) {
  models::NamedTensors w = models::load_model_weights(rankemb::test::asset("all-MiniLM-L6-v2"));
  EXPECT_EQ(w.size(), 104u);
  ASSERT_TRUE(w.count("embeddings.word_embeddings.weight"));
  EXPECT_EQ(w.at("embeddings.word_embeddings.weight").sizes().vec(), (std::vector<std::int64_t>{30522, 384}));
  EXPECT_EQ(w.at("embeddings.word_embeddings.weight").scalar_type(), torch::kFloat32);
  EXPECT_EQ(w.at("embeddings.position_ids").scalar_type(), torch::kInt64);
  EXPECT_EQ(w.at("embeddings.position_ids")[0][511].item<std::int64_t>(), 511);
  EXPECT_EQ(w.at("encoder.layer.5.output.dense.weight").sizes().vec(), (std::vector<std::int64_t>{384, 1536}));
  EXPECT_TRUE(torch::isfinite(w.at("encoder.layer.0.attention.self.query.weight")).all().item<bool>());
}

TEST(SafetensorsTorch, LoadsRealTinyStories) {
  models::NamedTensors w = models::load_model_weights(rankemb::test::shared_model("tinystories-656k"));
  // 20 tensors: the tied embedding is stored once, as lm_head.weight (the file's metadata records
  // "model.embed_tokens.weight": "lm_head.weight"); the architecture re-ties it.
  EXPECT_EQ(w.size(), 20u);
  EXPECT_EQ(w.at("lm_head.weight").sizes().vec(), (std::vector<std::int64_t>{2048, 128}));
  EXPECT_EQ(w.at("model.layers.1.self_attn.k_proj.weight").sizes().vec(), (std::vector<std::int64_t>{64, 128}));
  EXPECT_EQ(io::SafetensorsFile::open(rankemb::test::shared_model("tinystories-656k/model.safetensors"))
                .metadata()
                .at("model.embed_tokens.weight"),
            "lm_head.weight");
}
