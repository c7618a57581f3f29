// TrainOptions::mlp_only_train (SimCSE's, as the authors' posttraining/models.py uses it) on
// tests/fixtures/models/tiny-bert-b, a plain Hugging Face BERT without pooler: the loss sees
// tanh(dense([CLS])) through a freshly initialized head, evaluation / encode / export see the raw
// [CLS] state, the head is trained, checkpointed and resumed but never exported, and students
// that do not pool [CLS] are refused.
#include "rankemb/train/trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>

#include "common/temp_dir.h"
#include "common/expect_error.h"
#include "common/test_paths.h"
#include "rankemb/models/safetensors_torch.h"
#include "rankemb/models/encoder.h"

namespace {

// The same float32 [CLS] state reached by two code paths (a padded batch vs one sentence, a saved
// and reloaded model): 1.2e-6 apart with AVX2 kernels; the head the checks look for moves it by
// more than 1e-2.
constexpr double kTol = 1e-5;

namespace fs = std::filesystem;
namespace rt = rankemb::train;
namespace rm = rankemb::models;
using rankemb::ErrorCode;
using rankemb::test::expect_error;

using rankemb::test::TempDir;

fs::path tiny_bert_b() { return rankemb::test::fixtures_dir() / "models" / "tiny-bert-b"; }

// Chains over tiny-bert-b's toy vocabulary (w5..w99): each member changes one more word.
std::vector<rankemb::chains::Chain> toy_chains() {
  std::vector<rankemb::chains::Chain> chains;
  for (int c = 0; c < 4; ++c) {
    rankemb::chains::Chain ch{"toy" + std::to_string(c), {}, "test:" + std::to_string(c)};
    std::vector<int> words{5 + c, 20 + c, 40 + 3 * c, 60 + c, 80 + c};
    for (int k = 0; k < 6; ++k) {
      std::string s;
      for (int w : words) s += (s.empty() ? "w" : " w") + std::to_string(w);
      ch.sentences.push_back(s);
      words[static_cast<std::size_t>(k % 5)] = 5 + (words[static_cast<std::size_t>(k % 5)] * 7 + 11) % 95;
    }
    chains.push_back(std::move(ch));
  }
  return chains;
}

rt::TrainOptions mlp_options(const fs::path& out) {
  rt::TrainOptions o;
  o.student = tiny_bert_b();
  o.output_dir = out;
  o.lr = 1e-3;
  o.evaluate = false;
  o.write_curve = false;
  o.max_length = 16;
  o.pooler = rm::Pooler::Cls;
  o.mlp_only_train = true;
  return o;
}

const std::vector<std::string> kProbe = {"w5 w6 w7", "w50 w51 w52 w53", "w99", "w10 w20 w30 w40 w50 w60"};

// The last-layer [CLS] state of `texts`, computed here from the network outputs.
torch::Tensor cls_states(rm::SentenceEncoder& enc, const std::vector<std::string>& texts, std::int64_t max_length) {
  rm::TokenBatch b = enc.tokenize(texts, max_length);
  return enc.network().forward(b.input_ids, b.attention_mask).last_hidden_state.select(1, 0).to(torch::kFloat);
}

TEST(MlpOnlyTrain, HeadInTrainingOnly) {
  TempDir dir("paths");
  rt::Trainer trainer(toy_chains(), mlp_options(dir.path()));
  EXPECT_EQ(trainer.student().pooler(), rm::Pooler::ClsBeforePooler);

  // A fresh head: N(0, initializer_range 0.02) weights, zero bias, hidden x hidden.
  torch::nn::Linear head = trainer.mlp_head();
  ASSERT_FALSE(head.is_empty());
  ASSERT_EQ(head->weight.sizes(), (std::vector<std::int64_t>{48, 48}));
  double sd = head->weight.std().item<double>();
  EXPECT_GT(sd, 0.017);
  EXPECT_LT(sd, 0.023);
  EXPECT_EQ(head->weight.mean().abs().item<double>() < 0.003, true);
  EXPECT_EQ(head->bias.abs().max().item<double>(), 0.0);

  // Dropout off so the two paths are comparable.
  trainer.student().network().eval();
  torch::NoGradGuard no_grad;
  torch::Tensor cls = cls_states(trainer.student(), kProbe, 16);
  torch::Tensor want_train = torch::tanh(torch::addmm(head->bias, cls, head->weight.t()));
  torch::Tensor got_train = trainer.training_embeddings(kProbe);
  ASSERT_EQ(got_train.sizes(), want_train.sizes());
  EXPECT_LE((got_train - want_train).abs().max().item<double>(), kTol) << "training path is not tanh(dense(CLS))";

  rankemb::NullProgress quiet;
  torch::Tensor got_eval = trainer.student().encode(kProbe, {.max_length = 16}, quiet);
  EXPECT_LE((got_eval - cls).abs().max().item<double>(), kTol) << "evaluation path is not the raw [CLS] state";
  EXPECT_GT((got_eval - got_train).abs().max().item<double>(), 1e-2) << "the head changed nothing";
}

TEST(MlpOnlyTrain, ExportKeepsTheRawClsPathAndNoHead) {
  TempDir dir("export");
  rt::TrainOptions o = mlp_options(dir.path());
  o.max_steps = 4;
  rt::Trainer trainer(toy_chains(), o);
  torch::Tensor head0 = trainer.mlp_head()->weight.detach().clone();
  rankemb::NullProgress quiet;
  rt::TrainResult r = trainer.run(quiet);
  ASSERT_TRUE(r.finished);
  EXPECT_GT((trainer.mlp_head()->weight - head0).abs().max().item<double>(), 1e-6) << "the head was not trained";

  // best/: the plain HF source gains a sentence-transformers layout pooling the [CLS] token, and
  // holds exactly the network's tensors (the loader refuses unused ones, e.g. a head).
  fs::path best = dir.path() / "best";
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "modules.json", "1_Pooling/config.json",
                        "sentence_bert_config.json"})
    EXPECT_TRUE(fs::exists(best / f)) << f;
  auto tensors = rankemb::models::load_safetensors(best / "model.safetensors");
  for (const auto& [name, t] : tensors) EXPECT_EQ(name.find("mlp"), std::string::npos) << name;
  auto reloaded = rm::load_encoder(best);
  EXPECT_EQ(reloaded->pooler(), rm::Pooler::ClsBeforePooler);
  torch::Tensor want = trainer.student().encode(kProbe, {}, quiet);
  torch::Tensor got = reloaded->encode(kProbe, {}, quiet);
  EXPECT_LE((want - got).abs().max().item<double>(), kTol);
  torch::NoGradGuard no_grad;
  EXPECT_LE((got - cls_states(*reloaded, kProbe, 0)).abs().max().item<double>(), kTol);

  // The checkpoint carries the head for --resume.
  auto ckpt = rankemb::models::load_safetensors(dir.path() / "checkpoint" / "model.safetensors");
  ASSERT_TRUE(ckpt.count("mlp.dense.weight") && ckpt.count("mlp.dense.bias"));
  EXPECT_TRUE(torch::equal(ckpt.at("mlp.dense.weight"), trainer.mlp_head()->weight.detach()));
}

TEST(MlpOnlyTrain, ResumeRestoresTheHead) {
  TempDir a_dir("straight"), b_dir("resumed");
  rankemb::NullProgress quiet;
  rt::TrainOptions oa = mlp_options(a_dir.path());
  oa.max_steps = 6;
  rt::Trainer straight(toy_chains(), oa);
  ASSERT_TRUE(straight.run(quiet).finished);

  rt::TrainOptions ob = mlp_options(b_dir.path());
  ob.max_steps = 6;
  ob.checkpoint_steps = 3;
  {
    rt::TrainOptions first = ob;
    first.stop_after = 3;
    rt::Trainer t(toy_chains(), first);
    EXPECT_FALSE(t.run(quiet).finished);
  }
  ob.resume = true;
  rt::Trainer resumed(toy_chains(), ob);
  ASSERT_TRUE(resumed.run(quiet).finished);
  EXPECT_TRUE(torch::equal(straight.mlp_head()->weight, resumed.mlp_head()->weight));
  auto pa = straight.student().network().named_parameters(true);
  auto pb = resumed.student().network().named_parameters(true);
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), *pb.find(p.key()))) << p.key();

  // A checkpoint made with the head does not resume without it.
  rt::TrainOptions no_head = ob;
  no_head.mlp_only_train = false;
  expect_error([&] { rt::Trainer(toy_chains(), no_head).run(quiet); }, ErrorCode::Usage, {"mlp_only_train"});
}

TEST(MlpOnlyTrain, RefusesNonClsStudents) {
  TempDir dir("refuse");
  rt::TrainOptions o = mlp_options(dir.path());
  o.pooler = rm::Pooler::Avg;
  expect_error([&] { rt::Trainer t(toy_chains(), o); }, ErrorCode::Usage, {"mlp_only_train", "avg"});
  // Without the option nothing changes: no head, the loss sees the pooled vector.
  o.mlp_only_train = false;
  rt::Trainer plain(toy_chains(), o);
  EXPECT_TRUE(plain.mlp_head().is_empty());
  EXPECT_EQ(plain.student().pooler(), rm::Pooler::Avg);
}

}  // namespace

namespace {

// TrainOptions::length_buckets only regroups the student's forward pass: with dropout off the
// vectors the loss sees are the one-batch ones, rows in input order, with and without the head.
TEST(LengthBuckets, SameVectorsInInputOrder) {
  TempDir dir("buckets");
  std::vector<std::string> texts = {"w5", "w6 w7 w8 w9 w10 w11 w12", "w13 w14", "w15 w16 w17 w18", "w19 w20 w21",
                                    "w22 w23 w24 w25 w26 w27 w28 w29 w30", "w31"};
  for (bool head : {false, true}) {
    SCOPED_TRACE(head ? "mlp head" : "pooled");
    rt::TrainOptions o = mlp_options(dir.path());
    o.mlp_only_train = head;
    rt::Trainer one(toy_chains(), o);
    o.length_buckets = 3;
    rt::Trainer three(toy_chains(), o);
    if (head) {
      torch::NoGradGuard no_grad;
      three.mlp_head()->weight.copy_(one.mlp_head()->weight);
    }
    one.student().network().eval();
    three.student().network().eval();
    torch::NoGradGuard no_grad;
    torch::Tensor a = one.training_embeddings(texts), b = three.training_embeddings(texts);
    ASSERT_EQ(a.sizes(), b.sizes());
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-5);
  }
  rt::TrainOptions bad = mlp_options(dir.path());
  bad.length_buckets = 0;
  expect_error([&] { rt::Trainer t(toy_chains(), bad); }, ErrorCode::Usage, {"length buckets"});
}

}  // namespace
