// USE-Lite: `rankemb convert use-lite` on the real npm package, then the C++ port against the
// package's own node runtime (tests/fixtures/models/use_lite_500.expected.jsonl, written by
// scripts/regen/use_lite.js): the first 500 STS-B test sentence1 texts must match with cosine
// >= 0.99999 and max abs difference <= 1e-4 each, and cosine-similarity Spearman x 100 on STS-B
// test and SICK-R test must equal the node runtime's 72.27 and 70.15 within 0.05. Also the
// converter's errors on malformed packages.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/corpus.h"
#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/models/config.h"
#include "rankemb/models/convert_use_lite.h"
#include "rankemb/models/encoder.h"
#include "rankemb/util/error.h"
#include "rankemb/util/progress.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using rankemb::ErrorCode;

fs::path package_dir() { return rankemb::test::asset("use-lite/dist"); }

fs::path temp_dir(const std::string& name) {
  static std::atomic<int> counter{0};
  fs::path dir = fs::path(testing::TempDir()) / fmt::format("use_lite_test_{}_{}_{}", ::getpid(), name, counter++);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The real package converted once per test process.
const fs::path& converted() {
  static const fs::path dir = [] {
    fs::path out = temp_dir("converted") / "use-lite";
    rankemb::models::convert_use_lite(package_dir(), out);
    return out;
  }();
  return dir;
}

rankemb::models::SentenceEncoder& encoder() {
  static auto enc = rankemb::models::load_encoder(converted());
  return *enc;
}

torch::Tensor encode(const std::vector<std::string>& texts, std::int64_t batch = 64) {
  rankemb::NullProgress progress;
  return encoder().encode(texts, {.batch = batch, .max_length = 0, .normalize = false, .dtype = std::nullopt}, progress);
}

TEST(UseLiteConvert, WritesConfigWeightsAndVocab) {
  const fs::path& dir = converted();
  EXPECT_FALSE(fs::exists(fs::path(dir.string() + ".partial")));
  auto c = rankemb::models::load_hf_config(dir / "config.json");
  EXPECT_EQ(c.model_type, "use-lite");
  EXPECT_EQ(c.vocab_size, 8002);
  EXPECT_EQ(c.embedding_size, 256);
  EXPECT_EQ(c.hidden_size, 512);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.output_dim, 512);
  EXPECT_EQ(c.max_position_embeddings, 128);
  EXPECT_EQ(static_cast<float>(c.layer_norm_eps), 1e-6f);
  EXPECT_EQ(rankemb::io::read_file(dir / "vocab.json"), rankemb::io::read_file(package_dir() / "vocab.json"));
  EXPECT_EQ(encoder().dim(), 512);
  EXPECT_EQ(encoder().default_max_length(), 128);
}

TEST(UseLiteConvert, ReplacesAnEarlierConversionOnly) {
  fs::path out = temp_dir("replace") / "model";
  auto r = rankemb::models::convert_use_lite(package_dir(), out);
  EXPECT_EQ(r.n_layers, 2);
  EXPECT_EQ(r.n_tensors, 30);
  rankemb::models::convert_use_lite(package_dir(), out);  // over its own output: fine
  EXPECT_TRUE(fs::exists(out / "model.safetensors"));

  fs::path other = temp_dir("other");
  rankemb::io::write_atomic(other / "notes.txt", "mine");
  try {
    rankemb::models::convert_use_lite(package_dir(), other);
    ADD_FAILURE() << "converted over a directory that is not a conversion";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Usage) << e.what();
  }
  EXPECT_EQ(rankemb::io::read_file(other / "notes.txt"), "mine");
  EXPECT_FALSE(fs::exists(fs::path(other.string() + ".partial")));
}

// A copy of the package whose model.json is `edit`ed (the shards and vocab are linked).
fs::path edited_package(const std::function<void(json&)>& edit) {
  fs::path dir = temp_dir("pkg");
  for (const auto& entry : fs::directory_iterator(package_dir())) {
    if (entry.path().filename() != "model.json") fs::create_symlink(entry.path(), dir / entry.path().filename());
  }
  json model = rankemb::io::read_json(package_dir() / "model.json");
  edit(model);
  rankemb::io::write_atomic(dir / "model.json", model.dump());
  return dir;
}

void expect_model_format(const fs::path& input, const std::vector<std::string>& must_mention) {
  fs::path out = temp_dir("out") / "model";
  try {
    rankemb::models::convert_use_lite(input, out);
    ADD_FAILURE() << "expected an error converting " << input;
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ModelFormat) << e.what();
    for (const auto& m : must_mention) EXPECT_NE(std::string(e.what()).find(m), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(fs::path(out.string() + ".partial")));
}

json& weight_named(json& model, std::string_view suffix) {
  for (json& w : model["weightsManifest"][0]["weights"]) {
    if (w["name"].get<std::string>().ends_with(suffix)) return w;
  }
  throw std::runtime_error("no weight " + std::string(suffix));
}

TEST(UseLiteConvert, MalformedPackagesAreModelFormatErrors) {
  expect_model_format(temp_dir("empty"), {"model.json"});
  expect_model_format(edited_package([](json& m) { m.erase("weightsManifest"); }), {"model.json", "weightsManifest"});
  expect_model_format(edited_package([](json& m) { m["weightsManifest"][0]["paths"][6] = "group1-shard9of7"; }),
                      {"group1-shard9of7", "missing", "weightsManifest[0].paths[6]"});
  expect_model_format(edited_package([](json& m) { m["modelTopology"]["node"] = 3; }), {"model.json", "modelTopology.node"});
  expect_model_format(edited_package([](json& m) {
                        weight_named(m, "tanh_layer_0/bias")["quantization"] = {{"dtype", "uint8"}, {"scale", 0.1}, {"min", 0}};
                      }),
                      {"model.json", "weightsManifest[0].weights[", "tanh_layer_0/bias", "quantized"});
  expect_model_format(edited_package([](json& m) { weight_named(m, "tanh_layer_0/bias")["dtype"] = "float16"; }),
                      {"tanh_layer_0/bias", "float16"});
  // One shard short: the weights no longer fit.
  expect_model_format(edited_package([](json& m) { m["weightsManifest"][0]["paths"].erase(6); }),
                      {"model.json", "weightsManifest[0]", "bytes"});
  expect_model_format(edited_package([](json& m) { m["weightsManifest"][0]["paths"][0] = "../group1-shard1of7"; }),
                      {"weightsManifest[0].paths[0]"});
  // A weight the converter does not know (a different graph) is refused, not dropped.
  expect_model_format(edited_package([](json& m) { weight_named(m, "tanh_layer_0/bias")["name"] = "module/Encoder_en/other/bias"; }),
                      {"module/Encoder_en/other/bias", "unrecognised"});
  expect_model_format(edited_package([](json& m) {
                        json& w = weight_named(m, "Layer_1/TransformerLayer/MultiheadAttention/mul/y");
                        w["name"] = "module_apply_default/x/unused";
                        w["dtype"] = "int32";
                      }),
                      {"Layer_1 attention scale", "missing"});
}

// ---- parity with the node runtime ----------------------------------------------------------

struct Reference {
  std::string text;
  std::vector<int> ids;
  std::vector<float> embedding;
};

std::vector<Reference> reference() {
  std::vector<Reference> out;
  for (const json& j : rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "models" / "use_lite_500.expected.jsonl")) {
    out.push_back({j.at("text").get<std::string>(), j.at("ids").get<std::vector<int>>(), j.at("embedding").get<std::vector<float>>()});
  }
  return out;
}

TEST(UseLite, MatchesNodeRuntimeOn500StsbSentences) {
  auto ref = reference();
  ASSERT_EQ(ref.size(), 500u);
  std::vector<std::string> texts;
  std::size_t id_mismatches = 0;
  for (const auto& r : ref) {
    texts.push_back(r.text);
    auto ids = encoder().tokenizer().encode(r.text);
    if (!std::equal(ids.begin(), ids.end(), r.ids.begin(), r.ids.end()) && ++id_mismatches <= 3) {
      ADD_FAILURE() << "token ids differ for " << r.text;
    }
  }
  EXPECT_EQ(id_mismatches, 0u);

  torch::Tensor got = encode(texts);
  ASSERT_EQ(got.size(0), 500);
  ASSERT_EQ(got.size(1), 512);
  std::size_t failures = 0;
  double worst_cos = 1.0, worst_diff = 0.0;
  std::size_t worst_cos_at = 0, worst_diff_at = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    torch::Tensor want = torch::tensor(ref[i].embedding);
    torch::Tensor row = got[static_cast<std::int64_t>(i)];
    double cos = torch::cosine_similarity(row, want, 0).item<double>();
    double diff = (row - want).abs().max().item<double>();
    if (cos < worst_cos) worst_cos = cos, worst_cos_at = i;
    if (diff > worst_diff) worst_diff = diff, worst_diff_at = i;
    if ((cos < 0.99999 || diff > 1e-4) && ++failures <= 5) {
      ADD_FAILURE() << "stsb-test sentence1 #" << i + 1 << " \"" << ref[i].text << "\": cosine " << cos << ", max abs diff " << diff;
    }
  }
  EXPECT_EQ(failures, 0u) << "of " << ref.size() << " sentences";
  std::cout << fmt::format("[ parity ] worst cosine {:.9f} (#{}), max abs diff {:.3g} (#{})\n", worst_cos, worst_cos_at + 1, worst_diff,
                           worst_diff_at + 1);
}

TEST(UseLite, PaddingAndBatchingDoNotChangeVectors) {
  std::vector<std::string> texts = {"A man is playing a guitar.", "Hi", "Three dogs run through deep snow near a wooden fence today."};
  torch::Tensor batched = encode(texts, 3);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    torch::Tensor alone = encode({texts[i]}, 1)[0];
    EXPECT_LE((alone - batched[static_cast<std::int64_t>(i)]).abs().max().item<double>(), 1e-6) << texts[i];
  }
  // The graph's output is L2-normalized.
  EXPECT_NEAR(batched.norm(2, 1).min().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(batched.norm(2, 1).max().item<double>(), 1.0, 1e-6);
}

TEST(UseLite, Bfloat16StaysCloseToFloat32) {
  auto bf16 = rankemb::models::load_encoder(converted(), {.pooler = std::nullopt, .dtype = rankemb::Dtype::BFloat16});
  std::vector<std::string> texts;
  for (const auto& r : reference()) texts.push_back(r.text);
  texts.resize(100);
  rankemb::NullProgress progress;
  torch::Tensor low = bf16->encode(texts, {.batch = 64, .max_length = 0, .normalize = false, .dtype = std::nullopt}, progress);
  torch::Tensor cos = torch::cosine_similarity(low, encode(texts), 1);
  std::cout << fmt::format("[ bfloat16 ] worst cosine to float32 {:.6f}\n", cos.min().item<double>());
  EXPECT_GE(cos.min().item<double>(), 0.999);
}

// ---- STS-B / SICK-R Spearman (the node runtime's values, scripts/regen/use_lite.js --eval) ----

std::vector<double> average_ranks(const std::vector<double>& xs) {
  std::vector<std::size_t> idx(xs.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](auto a, auto b) { return xs[a] < xs[b]; });
  std::vector<double> r(xs.size());
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j + 1 < idx.size() && xs[idx[j + 1]] == xs[idx[i]]) ++j;
    for (std::size_t k = i; k <= j; ++k) r[idx[k]] = (static_cast<double>(i + j)) / 2 + 1;
    i = j + 1;
  }
  return r;
}

double spearman100(const std::vector<double>& a, const std::vector<double>& b) {
  auto ra = average_ranks(a), rb = average_ranks(b);
  double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / ra.size(), mb = std::accumulate(rb.begin(), rb.end(), 0.0) / rb.size();
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return 100 * sab / std::sqrt(saa * sbb);
}

// Cosine-similarity Spearman over tab-separated pairs (header skipped): sentence columns s1, s2
// and gold score column `score` (0-based).
double pair_spearman(const fs::path& file, int s1, int s2, int score) {
  std::ifstream in(file);
  EXPECT_TRUE(in) << file;
  std::string line;
  std::getline(in, line);
  std::vector<std::string> a, b;
  std::vector<double> gold;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::size_t start = 0;
    for (std::size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1) f.push_back(line.substr(start, tab - start));
    f.push_back(line.substr(start));
    a.push_back(f.at(s1));
    b.push_back(f.at(s2));
    gold.push_back(std::stod(f.at(score)));
  }
  torch::Tensor ea = encode(a), eb = encode(b);
  torch::Tensor sims = torch::cosine_similarity(ea, eb, 1).to(torch::kDouble).contiguous();
  std::vector<double> s(sims.data_ptr<double>(), sims.data_ptr<double>() + sims.numel());
  return spearman100(s, gold);
}

// About 10-30 s on two CPU cores (12,612 texts); filter out UseLiteEval.* for a quick run.
TEST(UseLiteEval, StsbAndSickrSpearmanMatchNodeRuntime) {
  double stsb = pair_spearman(rankemb::test::data_dir() / "stsb" / "stsb-test.tsv", 5, 6, 4);
  double sick = pair_spearman(rankemb::test::data_dir() / "sick" / "SICK_test_annotated.txt", 1, 2, 3);
  std::cout << fmt::format("[ spearman ] STS-B test {:.4f}, SICK-R test {:.4f}\n", stsb, sick);
  EXPECT_NEAR(stsb, 72.27, 0.05);
  EXPECT_NEAR(sick, 70.15, 0.05);
}

}  // namespace
