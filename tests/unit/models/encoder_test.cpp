// BERT/RoBERTa/MPNet encoders against Hugging Face transformers on seeded random tiny models
// (tests/fixtures/models/tiny-*, written by scripts/regen/encoders.py): every hidden state, the
// pooler output and the SimCSE poolers within 1e-5; plus SentenceEncoder behaviour (batched
// encode order, save/load round trip, gradients) and error paths.
#include "common/temp_dir.h"
#include "common/expect_error.h"
#include "rankemb/models/encoder.h"
#include "rankemb/models/embed.h"
#include "rankemb/models/kernels/int8_linear.h"
#include "rankemb/models/arch/layers.h"
#include "rankemb/models/kernels/switch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>


#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/corpus.h"
#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/models/safetensors_torch.h"
#include "rankemb/models/registry.h"
#include "rankemb/models/weights.h"
#include "rankemb/util/error.h"

namespace fs = std::filesystem;
using namespace rankemb::models;
using rankemb::ErrorCode;
using torch::Tensor;

namespace {

using rankemb::test::expect_error;

constexpr double kAtol = 1e-5;

fs::path models_dir() { return rankemb::test::fixtures_dir() / "models"; }

const std::vector<nlohmann::json>& cases() {
  static const auto c = rankemb::test::read_jsonl_fixture(models_dir() / "tiny_encoders.expected.jsonl");
  return c;
}

// Nested JSON lists of numbers -> tensor of `dtype`.
Tensor to_tensor(const nlohmann::json& j, torch::ScalarType dtype = torch::kFloat) {
  std::vector<std::int64_t> shape;
  for (const nlohmann::json* p = &j; p->is_array(); p = &(*p)[0]) {
    shape.push_back(static_cast<std::int64_t>(p->size()));
    if (p->empty()) break;
  }
  std::vector<double> flat;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& v) {
    if (v.is_array()) {
      for (const auto& x : v) walk(x);
    } else {
      flat.push_back(v.get<double>());
    }
  };
  walk(j);
  return torch::tensor(flat, torch::kDouble).reshape(shape).to(dtype);
}

double g_worst = 0;  // largest difference any parity comparison saw, printed by the parity test

// Max |a - b| and where, for failure messages.
std::string compare(const Tensor& got, const Tensor& want, double atol, bool* ok) {
  if (got.sizes() != want.sizes()) {
    *ok = false;
    return fmt::format("shape {} vs expected {}", c10::str(got.sizes()), c10::str(want.sizes()));
  }
  Tensor diff = (got.to(torch::kDouble) - want.to(torch::kDouble)).abs().flatten();
  auto worst = diff.argmax().item<std::int64_t>();
  double d = diff[worst].item<double>();
  g_worst = std::max(g_worst, d);
  *ok = d <= atol;
  return fmt::format("max abs diff {:.3g} at flat index {} (got {}, expected {})", d, worst,
                     got.flatten()[worst].item<double>(), want.flatten()[worst].item<double>());
}

#define EXPECT_CLOSE(got, want, atol, what)              \
  do {                                                   \
    bool ok_ = false;                                    \
    std::string msg_ = compare((got), (want), (atol), &ok_); \
    EXPECT_TRUE(ok_) << (what) << ": " << msg_;          \
  } while (0)

std::shared_ptr<EncoderNetwork> build_network(const fs::path& dir) {
  HfConfig config = load_hf_config(dir / "config.json");
  const ArchSpec* spec = arch_registry().find(config.model_type);
  EXPECT_NE(spec, nullptr) << config.model_type;
  WeightStore weights = WeightStore::load(dir);
  auto net = spec->build_encoder(config, weights);
  weights.finish();
  net->eval();
  return net;
}

// One fixture row: its model built from the fixture directory, and its batch.
struct FixtureCase {
  std::string name;
  std::shared_ptr<EncoderNetwork> net;
  Tensor ids, mask;
};
FixtureCase load_case(const nlohmann::json& c) {
  const std::string name = c["model"];
  return {name, build_network(models_dir() / name), to_tensor(c["input_ids"], torch::kLong),
          to_tensor(c["attention_mask"], torch::kLong)};
}

void copy_dir(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) fs::copy_file(e.path(), to / e.path().filename());
}

}  // namespace

TEST(TinyEncoders, FixtureCoversAllModels) {
  ASSERT_EQ(cases().size(), 5u);
}

TEST(TinyEncoders, HiddenStatesMatchTransformers) {
  for (const auto& c : cases()) {
    const auto [name, net, ids, mask] = load_case(c);
    SCOPED_TRACE(name);
    torch::NoGradGuard no_grad;
    EncoderOutput out = net->forward(ids, mask, true);
    EXPECT_CLOSE(out.last_hidden_state, to_tensor(c["last_hidden_state"]), kAtol, name + " last_hidden_state");
    ASSERT_EQ(out.hidden_states.size(), c["hidden_states"].size());
    for (std::size_t i = 0; i < out.hidden_states.size(); ++i) {
      EXPECT_CLOSE(out.hidden_states[i], to_tensor(c["hidden_states"][i]), kAtol,
                   fmt::format("{} hidden_states[{}]", name, i));
    }
    if (c["pooler_output"].is_null()) {
      EXPECT_FALSE(out.pooler_output.defined());
    } else {
      ASSERT_TRUE(out.pooler_output.defined());
      EXPECT_CLOSE(out.pooler_output, to_tensor(c["pooler_output"]), kAtol, name + " pooler_output");
    }
    // Without hidden states requested the last layer is the same.
    EncoderOutput plain = net->forward(ids, mask, false);
    EXPECT_TRUE(plain.hidden_states.empty());
    EXPECT_TRUE(torch::equal(plain.last_hidden_state, out.last_hidden_state));
  }
}

TEST(TinyEncoders, GradModeForwardMatchesTransformers) {
  // With grad on, attention takes three separate q/k/v products (the training path) instead of
  // the fused inference one; eval mode keeps dropout off so the numbers are comparable.
  for (const auto& c : cases()) {
    std::string name = c["model"];
    SCOPED_TRACE(name);
    auto net = build_network(models_dir() / name);
    Tensor ids = to_tensor(c["input_ids"], torch::kLong);
    Tensor mask = to_tensor(c["attention_mask"], torch::kLong);
    EncoderOutput out = net->forward(ids, mask, false);
    ASSERT_TRUE(out.last_hidden_state.requires_grad());
    EXPECT_CLOSE(out.last_hidden_state.detach(), to_tensor(c["last_hidden_state"]), kAtol, name + " last_hidden_state (grad on)");
  }
  std::cerr << "[ tiny ] worst abs diff to transformers: " << g_worst << "\n";
}

// The unpadded (packed) inference path against the same transformers fixture: every hidden state
// at the real tokens, the pooler output and every pooler within 1e-5. Pads come back as exact
// zeros where transformers computes states for them: that is how the test knows the packed path
// ran, on every model with padding in its batch.
TEST(TinyEncoders, UnpaddedForwardMatchesTransformersOnRealTokens) {
  for (const auto& c : cases()) {
    const auto [name, net, ids, mask] = load_case(c);
    SCOPED_TRACE(name);
    torch::NoGradGuard no_grad;
    EncoderOutput out = net->forward_unpadded(ids, mask, true);
    const Tensor real = mask.unsqueeze(-1).to(torch::kFloat);
    ASSERT_EQ(out.hidden_states.size(), c["hidden_states"].size());
    for (std::size_t i = 0; i < out.hidden_states.size(); ++i) {
      const Tensor want = to_tensor(c["hidden_states"][i]);
      EXPECT_CLOSE(out.hidden_states[i] * real, want * real, kAtol, fmt::format("{} hidden_states[{}]", name, i));
      EXPECT_TRUE(torch::equal(out.hidden_states[i] * (1 - real), torch::zeros_like(want))) << "pads are zeros";
      if (mask.eq(0).any().item<bool>()) EXPECT_TRUE((want * (1 - real)).ne(0).any().item<bool>());
    }
    EXPECT_TRUE(torch::equal(out.last_hidden_state, out.hidden_states.back()));
    if (!c["pooler_output"].is_null()) EXPECT_CLOSE(out.pooler_output, to_tensor(c["pooler_output"]), kAtol, name + " pooler_output");
    for (const auto& [pname, expected] : c["pooled"].items()) {
      EXPECT_CLOSE(net->pool(out, mask, parse_pooler(pname)), to_tensor(expected), kAtol, name + " pooler " + pname);
    }
  }
}

// Where packing does not apply, forward_unpadded is forward(), bit for bit: with gradients on,
// with the kernels switched off, in training mode, in bfloat16, and for a left-padded batch.
TEST(TinyEncoders, UnpaddedForwardFallsBackToPadded) {
  const auto [name, net, ids, mask] = load_case(cases().front());
  auto same = [&](const Tensor& i, const Tensor& m) {
    return torch::equal(net->forward_unpadded(i, m).last_hidden_state, net->forward(i, m).last_hidden_state);
  };
  EXPECT_TRUE(same(ids, mask)) << "gradients on";
  {
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(same(ids, mask)) << "packed (pads zero) when it applies";
    EXPECT_TRUE(same(ids.flip(1), mask.flip(1))) << "left padding";
    const bool before = rankemb::models::kernels::enabled();
    rankemb::models::kernels::set_enabled(false);
    EXPECT_TRUE(same(ids, mask)) << "RANKEMB_KERNELS=off";
    rankemb::models::kernels::set_enabled(before);
    net->train();
    torch::manual_seed(1);
    const Tensor padded = net->forward(ids, mask).last_hidden_state;
    torch::manual_seed(1);
    EXPECT_TRUE(torch::equal(net->forward_unpadded(ids, mask).last_hidden_state, padded)) << "training mode (dropout)";
    net->eval();
    net->to(torch::kBFloat16);
    EXPECT_TRUE(same(ids, mask)) << "bfloat16";
  }
}

// Any float32 CPU network in eval mode, for pack_tokens.
struct StandInNetwork final : EncoderNetwork {
  StandInNetwork() { register_parameter("w", torch::zeros({1})); }
  EncoderOutput forward(const Tensor&, const Tensor&, bool) override { return {}; }
  std::int64_t hidden_size() const override { return 1; }
  std::int64_t max_tokens() const override { return 8; }
};

TEST(TinyEncoders, PackTokensOfARightPaddedBatch) {
  torch::NoGradGuard no_grad;
  const Tensor mask = torch::tensor({1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0}, torch::kLong).view({3, 4});
  auto network = std::make_shared<StandInNetwork>();
  network->eval();
  const auto p = arch::pack_tokens(mask, *network);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->int8);
  network->set_int8_inference(true);
  EXPECT_TRUE(arch::pack_tokens(mask, *network)->int8);
  EXPECT_EQ(p->offsets, (std::vector<std::int64_t>{0, 4, 5, 7}));
  EXPECT_TRUE(torch::equal(p->index, torch::tensor({0, 1, 2, 3, 4, 8, 9}, torch::kLong)));
  EXPECT_TRUE(torch::equal(p->positions, torch::tensor({0, 1, 2, 3, 0, 0, 1}, torch::kLong)));
  const Tensor x = torch::arange(14, torch::kFloat).view({7, 2});
  EXPECT_TRUE(torch::equal(arch::first_tokens(x, *p), torch::tensor({0.f, 1.f, 8.f, 9.f, 10.f, 11.f}).view({3, 2})));
  const Tensor back = arch::unpack(x, *p);
  ASSERT_EQ(back.sizes(), (std::vector<std::int64_t>{3, 4, 2}));
  EXPECT_TRUE(torch::equal(back[0], x.narrow(0, 0, 4)));
  EXPECT_TRUE(torch::equal(back[1][0], x[4]));
  EXPECT_TRUE(torch::equal(back[1].narrow(0, 1, 3), torch::zeros({3, 2})));
  EXPECT_TRUE(torch::equal(back[2].narrow(0, 0, 2), x.narrow(0, 5, 2)));
  EXPECT_TRUE(torch::equal(back[2].narrow(0, 2, 2), torch::zeros({2, 2})));
  // No packing for an empty row (its [CLS] would be another sentence's) or left padding.
  EXPECT_FALSE(arch::pack_tokens(torch::tensor({1, 1, 0, 0}, torch::kLong).view({2, 2}), *network).has_value());
  EXPECT_FALSE(arch::pack_tokens(torch::tensor({0, 1, 1, 1}, torch::kLong).view({2, 2}), *network).has_value());
}

TEST(TinyEncoders, PoolersMatchSimCSE) {
  for (const auto& c : cases()) {
    const auto [name, net, ids, mask] = load_case(c);
    torch::NoGradGuard no_grad;
    EncoderOutput out = net->forward(ids, mask, true);
    for (const auto& [pname, expected] : c["pooled"].items()) {
      Pooler p = parse_pooler(pname);
      EXPECT_EQ(pooler_name(p), pname);
      EXPECT_CLOSE(net->pool(out, mask, p), to_tensor(expected), kAtol, name + " pooler " + pname);
    }
  }
}

TEST(TinyEncoders, SentenceEncoderMatchesFromIds) {
  // The BERT fixtures carry a vocab.txt and tiny-mpnet-a a tokenizer.json, so the whole load path runs
  // (tiny-bert-b has "bert."-prefixed weights).
  for (const auto& c : cases()) {
    std::string name = c["model"];
    if (model_input_files(models_dir() / name).size() < 3) continue;  // config + weights only
    SCOPED_TRACE(name);
    auto enc = load_encoder(models_dir() / name, {.pooler = Pooler::AvgFirstLast});
    EXPECT_EQ(enc->pooler(), Pooler::AvgFirstLast);
    EXPECT_FALSE(enc->normalizes());
    TokenBatch batch{to_tensor(c["input_ids"], torch::kLong), to_tensor(c["attention_mask"], torch::kLong)};
    torch::NoGradGuard no_grad;
    EXPECT_CLOSE(enc->embed_batch(batch), to_tensor(c["pooled"]["avg_first_last"]), kAtol, name);
    EXPECT_EQ(enc->dim(), to_tensor(c["pooled"]["avg"]).size(1));
  }
}

TEST(TinyEncoders, DefaultPoolerIsClsWithPooler) {
  auto enc = load_encoder(models_dir() / "tiny-bert-a");
  EXPECT_EQ(enc->pooler(), Pooler::Cls);
  EXPECT_EQ(enc->default_max_length(), 64);
  const auto& c = cases()[0];
  TokenBatch batch{to_tensor(c["input_ids"], torch::kLong), to_tensor(c["attention_mask"], torch::kLong)};
  torch::NoGradGuard no_grad;
  EXPECT_CLOSE(enc->embed_batch(batch), to_tensor(c["pooler_output"]), kAtol, "cls");
}

TEST(TinyEncoders, RobertaMaxTokensExcludesPaddingOffset) {
  auto net = build_network(models_dir() / "tiny-roberta");
  EXPECT_EQ(net->max_tokens(), 40 - 2);
  EXPECT_EQ(net->pad_token_id(), 1);
}

TEST(TinyEncoders, MpnetPositionsAndPadding) {
  auto net = build_network(models_dir() / "tiny-mpnet-b");
  EXPECT_EQ(net->max_tokens(), 150 - 2);
  EXPECT_EQ(net->pad_token_id(), 1);
  EXPECT_EQ(net->default_pooler(), Pooler::Cls);  // no pooler in -b: the [CLS] (<s>) state
}

TEST(TinyEncoders, MpnetTokenizerMatchesTokenizersLibrary) {
  // tiny-mpnet-a's tokenizer.json has all-mpnet-base-v2's shape (WordPiece + RobertaProcessing).
  const nlohmann::json* line = nullptr;
  for (const auto& c : cases()) {
    if (c.contains("tokenized")) line = &c;
  }
  ASSERT_NE(line, nullptr);
  auto enc = load_encoder(models_dir() / (*line)["model"].get<std::string>());
  const auto& t = (*line)["tokenized"];
  std::vector<std::string> texts = t["texts"];
  TokenBatch b = enc->tokenize(texts);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    auto want = t["ids"][i].get<std::vector<std::int64_t>>();
    auto row = b.input_ids[static_cast<std::int64_t>(i)];
    auto n = static_cast<std::int64_t>(want.size());
    ASSERT_EQ(b.attention_mask[static_cast<std::int64_t>(i)].sum().item<std::int64_t>(), n) << texts[i];
    for (std::int64_t k = 0; k < n; ++k) EXPECT_EQ(row[k].item<std::int64_t>(), want[k]) << texts[i] << " token " << k;
    for (std::int64_t k = n; k < row.size(0); ++k) EXPECT_EQ(row[k].item<std::int64_t>(), 1) << "pad is <pad> = 1";
  }
}

TEST(TinyEncoders, MpnetTrainsAndSavesUnprefixed) {
  // One gradient step reaches the shared relative position bias; the saved directory has the
  // unprefixed HF names (tiny-mpnet-b's weights sit under "mpnet.") and reloads to the same vectors.
  rankemb::test::TempDir tmp_in("mpnet_in"), tmp_out("mpnet_out");
  copy_dir(models_dir() / "tiny-mpnet-a", tmp_in.path());
  auto enc = load_encoder(tmp_in.path(), {.pooler = Pooler::Avg});
  enc->network().train();
  // A loss over every position, pads included, so only padding_idx keeps row 1 of the tables
  // (the pads' word and position) out of the gradient, as in transformers.
  TokenBatch batch = enc->tokenize({"w7 w8 w9", "w10"});
  ASSERT_EQ(batch.input_ids[1][3].item<std::int64_t>(), 1);  // a pad
  enc->network().forward(batch.input_ids, batch.attention_mask).last_hidden_state.pow(2).sum().backward();
  auto params = enc->network().named_parameters();
  Tensor bias = params["encoder.relative_attention_bias.weight"];
  ASSERT_TRUE(bias.grad().defined());
  EXPECT_GT(bias.grad().abs().sum().item<double>(), 0.0);
  for (const char* table : {"embeddings.position_embeddings.weight", "embeddings.word_embeddings.weight"}) {
    Tensor g = params[table].grad();
    EXPECT_EQ(g[1].abs().sum().item<double>(), 0.0) << table;
    EXPECT_GT(g[2].abs().sum().item<double>(), 0.0) << table;  // a used row does get one
  }
  {
    torch::NoGradGuard no_grad;
    for (auto& p : enc->network().parameters())
      if (p.grad().defined()) p.sub_(p.grad() * 0.1);
  }
  enc->network().eval();
  enc->save(tmp_out.path());
  auto saved = rankemb::models::load_safetensors(tmp_out.path() / "model.safetensors");
  auto original = rankemb::models::load_safetensors(models_dir() / "tiny-mpnet-a" / "model.safetensors");
  std::set<std::string> saved_names, original_names;
  for (const auto& [name, t] : saved) saved_names.insert(name);
  for (const auto& [name, t] : original) original_names.insert(name);
  EXPECT_EQ(saved_names, original_names);
  EXPECT_FALSE(torch::equal(saved.at("encoder.relative_attention_bias.weight"), original.at("encoder.relative_attention_bias.weight")));
  auto again = load_encoder(tmp_out.path(), {.pooler = Pooler::Avg});
  rankemb::NullProgress progress;
  std::vector<std::string> texts{"w7 w8 w9", "w50"};
  EXPECT_TRUE(torch::equal(enc->encode(texts, {}, progress), again->encode(texts, {}, progress)));

  // tiny-mpnet-b's checkpoint has every name under "mpnet."; its save has none.
  rankemb::test::TempDir tmp_b("mpnet_b_out");
  auto b_net = build_network(models_dir() / "tiny-mpnet-b");
  rankemb::models::NamedTensors b_tensors;
  for (const auto& p : b_net->named_parameters()) b_tensors.emplace(p.key(), p.value().detach());
  rankemb::models::save_safetensors(tmp_b.path() / "model.safetensors", b_tensors, {{"format", "pt"}});
  fs::copy_file(models_dir() / "tiny-mpnet-b" / "config.json", tmp_b.path() / "config.json");
  for (const auto& [name, t] : rankemb::models::load_safetensors(tmp_b.path() / "model.safetensors"))
    EXPECT_FALSE(name.starts_with("mpnet.")) << name;
  auto b_again = build_network(tmp_b.path());
  const auto& row = cases()[4];
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(b_again->forward(to_tensor(row["input_ids"], torch::kLong), to_tensor(row["attention_mask"], torch::kLong)).last_hidden_state,
                           b_net->forward(to_tensor(row["input_ids"], torch::kLong), to_tensor(row["attention_mask"], torch::kLong)).last_hidden_state));
}

TEST(TinyEncoders, MpnetBfloat16StaysClose) {
  // The 140-token row of tiny-mpnet-b in bfloat16 against float32.
  const auto& row = cases()[4];
  ASSERT_EQ(row["model"], "tiny-mpnet-b");
  auto f32 = build_network(models_dir() / "tiny-mpnet-b");
  auto bf16 = build_network(models_dir() / "tiny-mpnet-b");
  bf16->to(torch::kBFloat16);
  Tensor ids = to_tensor(row["input_ids"], torch::kLong), mask = to_tensor(row["attention_mask"], torch::kLong);
  torch::NoGradGuard no_grad;
  Tensor a = f32->pool(f32->forward(ids, mask), mask, Pooler::Avg);
  Tensor b = bf16->pool(bf16->forward(ids, mask), mask, Pooler::Avg);
  EXPECT_GT(torch::cosine_similarity(a, b.to(torch::kFloat), 1).min().item<double>(), 0.99);
}

TEST(TinyEncoders, MpnetRefusesTooFewBuckets) {
  rankemb::test::TempDir tmp("mpnet_buckets");
  copy_dir(models_dir() / "tiny-mpnet-a", tmp.path());
  auto cfg = rankemb::io::read_json(tmp.path() / "config.json");
  cfg["relative_attention_num_buckets"] = 16;
  rankemb::io::write_atomic(tmp.path() / "config.json", cfg.dump());
  expect_error([&] { load_encoder(tmp.path()); }, ErrorCode::ModelFormat, {"relative_attention_num_buckets", "16", "32"});
}

TEST(SentenceEncoder, EncodeKeepsInputOrderAndMatchesEmbed) {
  auto enc = load_encoder(models_dir() / "tiny-bert-a", {.pooler = Pooler::Avg});
  std::vector<std::string> texts;
  for (int i = 0; i < 23; ++i) {
    std::string t;
    for (int k = 0; k <= (i * 7) % 11; ++k) t += fmt::format("w{} ", 5 + (i * 13 + k * 5) % 90);
    texts.push_back(t);
  }
  rankemb::NullProgress progress;
  Tensor batched = enc->encode(texts, {.batch = 4}, progress);
  ASSERT_EQ(batched.size(0), 23);
  ASSERT_EQ(batched.scalar_type(), torch::kFloat);
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    Tensor single = enc->embed({texts[i]});
    EXPECT_CLOSE(batched[static_cast<std::int64_t>(i)], single[0], 1e-5, fmt::format("text {}", i));
  }
  Tensor normalized = enc->encode(texts, {.batch = 5, .normalize = true}, progress);
  EXPECT_CLOSE(normalized.norm(2, 1), torch::ones({23}), 1e-5, "norms");
  EXPECT_EQ(enc->encode({}, {}, progress).size(0), 0);
}

// What `rankemb serve --workers 2` does: two threads encode with the same model at once, each on
// its share of the threads; each gets what one call alone gives (float32 and int8; the int8
// copies of the weights are made by whichever call comes first).
TEST(SentenceEncoder, TwoWorkersEncodeAtOnceAsOneCallDoes) {
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) texts.push_back(fmt::format("w{} w{} w{}", 5 + i % 50, 6 + (i * 7) % 50, 9 + (i * 3) % 40));
  for (bool int8 : {false, true}) {
    if (int8 && !kernels::int8_available()) continue;
    auto enc = load_encoder(models_dir() / "tiny-bert-a", {.pooler = Pooler::Avg, .int8 = int8});
    rankemb::NullProgress progress;
    const int before = at::get_num_threads();
    at::set_num_threads(2);
    std::vector<Tensor> out(2);
    std::vector<int> shares(2), teams(2);
    std::vector<std::thread> workers;
    for (int w = 0; w < 2; ++w)
      workers.emplace_back([&, w] {
        shares[w] = take_share_of_threads(w, 2);
        for (int round = 0; round < 5; ++round) out[w] = enc->encode(texts, {.batch = 8}, progress);
        teams[w] = kernels::parallel_team_size();  // after libtorch's own parallel calls in this thread
      });
    for (auto& t : workers) t.join();
    const int main_team = kernels::parallel_team_size();
    const Tensor alone = enc->encode(texts, {.batch = 8}, progress);
    at::set_num_threads(before);
    EXPECT_EQ(shares, (std::vector<int>{1, 1}));
    EXPECT_EQ(teams, (std::vector<int>{1, 1})) << "a worker's share did not hold";
    EXPECT_EQ(main_team, 2) << "a worker's share leaked into the other threads";
    EXPECT_TRUE(torch::equal(out[0], alone)) << "int8 " << int8;
    EXPECT_TRUE(torch::equal(out[1], alone)) << "int8 " << int8;
  }
}

TEST(SentenceEncoder, TokenizeTruncatesAndPads) {
  auto enc = load_encoder(models_dir() / "tiny-bert-a");
  TokenBatch b = enc->tokenize({"w5 w6 w7 w8 w9", "w10"}, 4);
  EXPECT_EQ(b.input_ids.sizes(), (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(b.input_ids[0][0].item<std::int64_t>(), 2);   // [CLS]
  EXPECT_EQ(b.input_ids[0][3].item<std::int64_t>(), 3);   // [SEP] after truncation
  EXPECT_EQ(b.attention_mask[1].sum().item<std::int64_t>(), 3);
  EXPECT_EQ(b.input_ids[1][3].item<std::int64_t>(), 0);   // [PAD]
  expect_error([&] { enc->tokenize({"w5"}, 65); }, ErrorCode::Usage, {"65", "64"});
  expect_error([&] { enc->tokenize({std::string("bad \xff utf8")}); }, ErrorCode::Input, {"UTF-8"});
}

TEST(SentenceEncoder, TrainModeBackpropagates) {
  auto enc = load_encoder(models_dir() / "tiny-bert-a", {.pooler = Pooler::Cls});
  enc->network().train();
  Tensor a = enc->embed({"w5 w6 w7", "w8"});
  a.pow(2).sum().backward();
  auto params = enc->network().named_parameters();
  ASSERT_TRUE(params["embeddings.word_embeddings.weight"].grad().defined());
  EXPECT_GT(params["pooler.dense.weight"].grad().abs().sum().item<double>(), 0.0);
  // Dropout (0.1 in the config) is active in train mode and off in eval mode.
  Tensor b = enc->embed({"w5 w6 w7", "w8"});
  EXPECT_FALSE(torch::allclose(a, b));
  enc->network().eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(enc->embed({"w5 w6 w7"}), enc->embed({"w5 w6 w7"})));
}

TEST(SentenceEncoder, EncodeRestoresTrainMode) {
  auto enc = load_encoder(models_dir() / "tiny-bert-a");
  enc->network().train();
  rankemb::NullProgress progress;
  Tensor x = enc->encode({"w5 w6", "w7"}, {}, progress);
  Tensor y = enc->encode({"w5 w6", "w7"}, {}, progress);
  EXPECT_TRUE(torch::equal(x, y));  // eval mode inside encode
  EXPECT_TRUE(enc->network().is_training());
  expect_error([&] { enc->encode({"w5"}, {.dtype = rankemb::Dtype::BFloat16}, progress); }, ErrorCode::Usage, {"bfloat16"});
}

TEST(SentenceEncoder, Bfloat16StaysClose) {
  auto f32 = load_encoder(models_dir() / "tiny-bert-a", {.pooler = Pooler::Avg});
  auto bf16 = load_encoder(models_dir() / "tiny-bert-a", {.pooler = Pooler::Avg, .dtype = rankemb::Dtype::BFloat16});
  EXPECT_EQ(bf16->dtype(), rankemb::Dtype::BFloat16);
  rankemb::NullProgress progress;
  std::vector<std::string> texts{"w5 w6 w7 w8", "w9 w10", "w11"};
  Tensor a = f32->encode(texts, {}, progress);
  Tensor b = bf16->encode(texts, {.dtype = rankemb::Dtype::BFloat16}, progress);
  EXPECT_EQ(b.scalar_type(), torch::kFloat);
  Tensor cos = torch::cosine_similarity(a, b, 1);
  EXPECT_GT(cos.min().item<double>(), 0.99);
}

TEST(SentenceEncoder, SaveRoundTripsWithoutPrefix) {
  rankemb::test::TempDir tmp_out("enc_save");
  const fs::path out = tmp_out.path();
  auto enc = load_encoder(models_dir() / "tiny-bert-b", {.pooler = Pooler::AvgTop2});
  enc->save(out);
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt"}) EXPECT_TRUE(fs::exists(out / f)) << f;
  auto tensors = rankemb::models::load_safetensors(out / "model.safetensors");
  EXPECT_TRUE(tensors.count("embeddings.word_embeddings.weight"));
  for (const auto& [name, t] : tensors) EXPECT_FALSE(name.starts_with("bert.")) << name;
  auto again = load_encoder(out, {.pooler = Pooler::AvgTop2});
  rankemb::NullProgress progress;
  std::vector<std::string> texts{"w5 w6 w7", "w50"};
  EXPECT_TRUE(torch::equal(enc->encode(texts, {}, progress), again->encode(texts, {}, progress)));
}

TEST(SentenceEncoder, SentenceTransformersLayout) {
  // tiny-bert-a dressed as a sentence-transformers directory: mean pooling + Normalize.
  rankemb::test::TempDir tmp_dir("enc_st");
  const fs::path dir = tmp_dir.path();
  copy_dir(models_dir() / "tiny-bert-a", dir);
  rankemb::io::write_atomic(dir / "modules.json", R"([
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])");
  fs::create_directories(dir / "1_Pooling");
  rankemb::io::write_atomic(dir / "1_Pooling" / "config.json",
                            R"({"word_embedding_dimension": 32, "pooling_mode_cls_token": false,
                                "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false})");
  rankemb::io::write_atomic(dir / "sentence_bert_config.json", R"({"max_seq_length": 16, "do_lower_case": false})");
  auto st = load_encoder(dir);
  EXPECT_EQ(st->pooler(), Pooler::Avg);
  EXPECT_TRUE(st->normalizes());
  EXPECT_EQ(st->default_max_length(), 16);
  auto plain = load_encoder(models_dir() / "tiny-bert-a", {.pooler = Pooler::Avg});
  rankemb::NullProgress progress;
  std::vector<std::string> texts{"w5 w6 w7", "w9"};
  Tensor want = plain->encode(texts, {.normalize = true}, progress);
  EXPECT_CLOSE(st->encode(texts, {}, progress), want, 1e-6, "st layout");

  // Saving keeps the layout, with the pooler written back.
  rankemb::test::TempDir tmp_out("enc_st_save");
  const fs::path out = tmp_out.path();
  st->set_pooler(Pooler::Max);
  st->save(out);
  auto pooling = rankemb::io::read_json(out / "1_Pooling" / "config.json");
  EXPECT_TRUE(pooling["pooling_mode_max_tokens"].get<bool>());
  EXPECT_FALSE(pooling["pooling_mode_mean_tokens"].get<bool>());
  auto reloaded = load_encoder(out);
  EXPECT_EQ(reloaded->pooler(), Pooler::Max);
  EXPECT_TRUE(reloaded->normalizes());
  st->set_pooler(Pooler::AvgTop2);
  expect_error([&] { st->save(out); }, ErrorCode::Usage, {"avg_top2"});

  // Unsupported modules and pooling modes are model-format errors naming the file.
  rankemb::io::write_atomic(dir / "1_Pooling" / "config.json",
                            R"({"pooling_mode_mean_sqrt_len_tokens": true})");
  expect_error([&] { load_encoder(dir); }, ErrorCode::ModelFormat, {"1_Pooling", "pooling_mode_mean_sqrt_len_tokens"});
  rankemb::io::write_atomic(dir / "modules.json",
                            R"([{"idx": 0, "name": "0", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}])");
  expect_error([&] { load_encoder(dir); }, ErrorCode::ModelFormat, {"modules.json", "Dense"});
}

TEST(LoadEncoder, Errors) {
  expect_error([] { load_encoder("/nonexistent/model"); }, ErrorCode::ModelFormat, {"/nonexistent/model"});
  rankemb::test::TempDir tmp_dir("enc_err");
  const fs::path dir = tmp_dir.path();
  copy_dir(models_dir() / "tiny-bert-a", dir);

  // A decoder config is not a sentence encoder.
  fs::copy_file(models_dir() / "configs" / "llama3.json", dir / "config.json", fs::copy_options::overwrite_existing);
  expect_error([&] { load_encoder(dir); }, ErrorCode::ModelFormat, {"llama", "not a sentence encoder"});

  // Shapes that disagree with the config name the tensor.
  auto cfg = rankemb::io::read_json(models_dir() / "tiny-bert-a" / "config.json");
  cfg["intermediate_size"] = 65;
  rankemb::io::write_atomic(dir / "config.json", cfg.dump());
  expect_error([&] { load_encoder(dir); }, ErrorCode::ModelFormat, {"intermediate.dense.weight", "[64, 32]"});

  // Extra tensors are not silently dropped.
  rankemb::io::write_atomic(dir / "config.json", rankemb::io::read_file(models_dir() / "tiny-bert-a" / "config.json"));
  auto tensors = rankemb::models::load_safetensors(models_dir() / "tiny-bert-a" / "model.safetensors", {.copy = true});
  tensors["surprise.weight"] = torch::zeros({2});
  rankemb::models::save_safetensors(dir / "model.safetensors", tensors);
  expect_error([&] { load_encoder(dir); }, ErrorCode::ModelFormat, {"surprise.weight", "not used"});

  fs::remove(dir / "model.safetensors");
  expect_error([&] { load_encoder(dir); }, ErrorCode::ModelFormat, {"model.safetensors"});

  expect_error([] { parse_pooler("mean"); }, ErrorCode::Usage, {"mean", "avg_first_last"});
}
