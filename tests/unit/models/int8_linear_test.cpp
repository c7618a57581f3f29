// kernels/int8_linear against an independent reference: the quantization written again with
// libtorch's operators (float32 scales and round-half-to-even, as the header specifies) and the
// integer product and its correction done in float64. The integer parts must agree exactly, so the
// tolerance is float32 rounding of the epilogue: 1e-5 relative to the size of the output. Also:
// full-range inputs that make AVX2's saturating 8-bit dot product (vpmaddubsw) wrong with 8-bit
// weights, a row's result independent of its batch, and int8 inference of real encoders
// (all-MiniLM-L6-v2, tiny MPNet): used only when asked, within cosine 0.98 of float32, remade after
// the weights change, refused where it cannot run.
#include "rankemb/models/kernels/int8_linear.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/expect_error.h"
#include "common/test_paths.h"
#include "rankemb/models/encoder.h"
#include "rankemb/models/kernels/switch.h"
#include "rankemb/util/progress.h"

namespace {

namespace rk = rankemb::models::kernels;
namespace models = rankemb::models;
using torch::Tensor;

// y = x · Wᵀ + b by the header's recipe, in libtorch operators; the products in float64.
Tensor reference(const Tensor& x, const Tensor& w, const Tensor& b) {
  const Tensor lo = std::get<0>(x.min(1, true)).clamp_max(0), hi = std::get<0>(x.max(1, true)).clamp_min(0);
  Tensor sx = (hi - lo) / 255.0f;
  sx = torch::where(hi > lo, sx, torch::ones_like(sx));
  const Tensor z = torch::round(-lo / sx);
  const Tensor qx = (torch::round(x / sx) + z).clamp(0, 255);
  const Tensor amax = w.abs().amax(1, true);
  const Tensor sw = torch::where(amax > 0, amax / float(rk::Int8Linear::kWeightMax), torch::ones_like(amax));
  const Tensor qw = torch::round(w / sw).clamp(-rk::Int8Linear::kWeightMax, rk::Int8Linear::kWeightMax);
  const Tensor acc = torch::mm((qx - z).to(torch::kDouble), qw.to(torch::kDouble).t());
  return acc * sx.to(torch::kDouble) * sw.to(torch::kDouble).t() + b.to(torch::kDouble);
}

Tensor run(const rk::Int8Linear& lin, const Tensor& x) {
  Tensor y = torch::empty({x.size(0), lin.out()});
  lin.forward(x.data_ptr<float>(), x.size(0), y.data_ptr<float>());
  return y;
}

void expect_matches_reference(const Tensor& x, const Tensor& w, const Tensor& b) {
  const rk::Int8Linear lin(w.data_ptr<float>(), b.data_ptr<float>(), w.size(0), w.size(1));
  const Tensor want = reference(x, w, b);
  const Tensor got = run(lin, x).to(torch::kDouble);
  const double scale = want.abs().max().item<double>() + 1.0;
  EXPECT_LE((got - want).abs().max().item<double>(), 1e-5 * scale) << "rows " << x.size(0) << ", in " << w.size(1);
}

TEST(Int8Linear, MatchesAnIndependentQuantizedProduct) {
  if (!rk::int8_available()) GTEST_SKIP() << "built without oneDNN";
  torch::manual_seed(7);
  // Widths that are and are not multiples of the AVX2 loops' 8 and 32 (their scalar tails).
  for (auto [rows, in, out] : {std::tuple{1, 384, 96}, {7, 384, 1536}, {100, 1536, 384}, {33, 64, 10}, {5, 37, 13}, {9, 100, 7}}) {
    Tensor x = torch::randn({rows, in});
    x.select(1, 3).mul_(20.0f);  // an outlier feature, as LayerNorm outputs have
    expect_matches_reference(x, torch::randn({out, in}) * 0.05f, torch::randn({out}));
  }
  // Rows of one sign (zero point 0 or 255), a zero row, a zero weight row.
  Tensor x = torch::rand({4, 64});
  x[1].neg_();
  x[2].zero_();
  Tensor w = torch::randn({8, 64});
  w[5].zero_();
  expect_matches_reference(x, w, torch::zeros({8}));
}

TEST(Int8Linear, FullRangeInputsDoNotSaturate) {
  if (!rk::int8_available()) GTEST_SKIP() << "built without oneDNN";
  // Every activation quantizes to 255 and every weight to +-max: with 8-bit weights AVX2's
  // vpmaddubsw would add 255·127 + 255·127 into a saturating int16 and lose the sum.
  const Tensor x = torch::ones({5, 256});
  Tensor w = torch::ones({3, 256});
  w[1].neg_();
  w[2].slice(0, 0, 128).neg_();
  expect_matches_reference(x, w, torch::zeros({3}));
  const rk::Int8Linear lin(w.data_ptr<float>(), nullptr, 3, 256);
  const Tensor y = run(lin, x);
  EXPECT_NEAR(y[0][0].item<float>(), 256.0f, 1e-3);
  EXPECT_NEAR(y[0][1].item<float>(), -256.0f, 1e-3);
  EXPECT_NEAR(y[0][2].item<float>(), 0.0f, 1e-3);
}

TEST(Int8Linear, ARowDoesNotDependOnItsBatch) {
  if (!rk::int8_available()) GTEST_SKIP() << "built without oneDNN";
  torch::manual_seed(3);
  const Tensor x = torch::randn({40, 384}), w = torch::randn({128, 384}), b = torch::randn({128});
  const rk::Int8Linear lin(w.data_ptr<float>(), b.data_ptr<float>(), 128, 384);
  const Tensor all = run(lin, x);
  for (std::int64_t i : {0, 17, 39}) {
    EXPECT_TRUE(torch::equal(run(lin, x.slice(0, i, i + 1).contiguous()), all.slice(0, i, i + 1))) << "row " << i;
  }
}

std::vector<std::string> sentences() {
  return {"A man is playing a guitar.", "Two dogs run across a snowy field, chasing a red ball.",
          "The stock market fell sharply on Tuesday.", "ok", "Quantum entanglement links particles across distances."};
}

Tensor encode(models::SentenceEncoder& enc) {
  rankemb::NullProgress quiet;
  return enc.encode(sentences(), {.batch = 2, .normalize = true}, quiet);
}

TEST(Int8Linear, RealEncodersStayCloseToFloat32AndFollowTheirWeights) {
  if (!rk::int8_available()) GTEST_SKIP() << "built without oneDNN";
  for (const auto& dir : {rankemb::test::asset("all-MiniLM-L6-v2"), rankemb::test::fixtures_dir() / "models" / "tiny-mpnet-a"}) {
    auto f32 = models::load_encoder(dir);
    auto q8 = models::load_encoder(dir, {.int8 = true});
    EXPECT_TRUE(q8->network().int8_inference());
    const Tensor a = encode(*f32), b = encode(*q8);
    const Tensor cos = (a * b).sum(1);
    EXPECT_GE(cos.min().item<float>(), 0.98f) << dir;
    EXPECT_FALSE(torch::equal(a, b)) << dir << ": the int8 path did not run";
    // Weights changed in place (as an optimizer step does): the int8 copies must follow, the
    // fused q/k/v and MPNet's o included (every matrix but the embedding tables).
    {
      torch::NoGradGuard no_grad;
      for (auto* net : {&f32->network(), &q8->network()}) {
        for (auto& p : net->named_parameters()) {
          if (p.value().dim() == 2 && p.key().find("embeddings") == std::string::npos) p.value().mul_(-0.5f);
        }
      }
    }
    const Tensor c = encode(*f32), d = encode(*q8);
    EXPECT_GE((c * d).sum(1).min().item<float>(), 0.98f) << dir << " after the weights changed";
  }
}

#if RANKEMB_WITH_ONEDNN
TEST(Int8Linear, ThisBuildHasIt) { EXPECT_TRUE(rk::int8_available()) << "configured with oneDNN, yet int8 is unavailable"; }
#endif

TEST(Int8Linear, RefusedWhereItCannotRun) {
  const auto dir = rankemb::test::fixtures_dir() / "models" / "tiny-bert-a";
  if (rk::int8_available()) {
    rankemb::test::expect_error([&] { models::load_encoder(dir, {.dtype = rankemb::Dtype::BFloat16, .int8 = true}); },
                                rankemb::ErrorCode::Usage, "float32 model on the CPU");
    const bool before = rk::enabled();
    rk::set_enabled(false);
    rankemb::test::expect_error([&] { models::load_encoder(dir, {.int8 = true}); }, rankemb::ErrorCode::Usage,
                                "RANKEMB_KERNELS=off");
    rk::set_enabled(before);
  } else {
    rankemb::test::expect_error([&] { models::load_encoder(dir, {.int8 = true}); }, rankemb::ErrorCode::Usage, "oneDNN");
  }
}

}  // namespace
