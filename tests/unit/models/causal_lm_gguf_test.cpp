// SmolLM2-135M-Instruct from its GGUF file (the embedded LLM) against transformers'
// LlamaForCausalLM built from gguf-py-dequantized tensors (scripts/regen/decoder_gguf.py):
// prefill logits at every prompt position and 8 cached greedy decode steps, float32, within
// 1e-4 on a fixed sample of 96 vocabulary ids, and the same argmax at every position.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/models/causal_lm.h"
#include "rankemb/models/kernels/switch.h"

namespace {

constexpr double kTol = 1e-4;
double g_worst = 0;  // over the whole test, reported as a test property

void expect_sample(const torch::Tensor& row, const nlohmann::json& want, const std::vector<std::int64_t>& sample,
                   const std::string& where) {
  auto r = row.contiguous();
  const float* p = r.data_ptr<float>();
  double worst = 0;
  for (std::size_t k = 0; k < sample.size(); ++k) worst = std::max(worst, std::abs(p[sample[k]] - want[k].get<double>()));
  EXPECT_LT(worst, kTol) << where;
  g_worst = std::max(g_worst, worst);
}

}  // namespace

TEST(GgufDecoder, SmolLM2MatchesTransformersPrefillAndCachedDecode) {
  const auto fixture = rankemb::io::read_json(rankemb::test::fixtures_dir() / "llm/smollm2_gguf_logits.json");
  auto lm = rankemb::models::load_causal_lm(rankemb::test::asset("smollm2-135m-instruct/" + fixture["gguf"].get<std::string>()));
  EXPECT_EQ(lm->config().model_type, "llama");
  EXPECT_EQ(lm->vocab_size(), 49152);
  EXPECT_TRUE(lm->config().tie_word_embeddings);
  const auto sample = fixture["sample_ids"].get<std::vector<std::int64_t>>();
  const auto& cases = fixture["cases"];
  lm->reserve(cases.size(), 64);
  for (std::size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE("prompt " + std::to_string(c));
    const auto prompt = cases[c]["prompt"].get<std::vector<std::int64_t>>();
    torch::Tensor pre = lm->forward({c}, {prompt}, /*all_positions=*/true)[0];
    for (std::size_t t = 0; t < prompt.size(); ++t) {
      expect_sample(pre[t], cases[c]["prefill_sample"][t], sample, "prefill position " + std::to_string(t));
      EXPECT_EQ(pre[t].argmax().item<std::int64_t>(), cases[c]["prefill_argmax"][t].get<std::int64_t>()) << "position " << t;
      EXPECT_NEAR(pre[t].max().item<float>(), cases[c]["prefill_max"][t].get<double>(), kTol);
    }
    const auto decode = cases[c]["decode_ids"].get<std::vector<std::int64_t>>();
    for (std::size_t k = 0; k < decode.size(); ++k) {
      torch::Tensor row = lm->forward({c}, {{decode[k]}})[0];
      expect_sample(row, cases[c]["decode_sample"][k], sample, "decode step " + std::to_string(k));
      // Greedy: each fed token is the reference's argmax of the step before.
      if (k + 1 < decode.size()) {
        EXPECT_EQ(row.argmax().item<std::int64_t>(), decode[k + 1]) << "step " << k;
      }
    }
  }
  RecordProperty("max_abs_logit_diff", std::to_string(g_worst));
  std::cout << "max |logit - transformers| = " << g_worst << '\n';
}

TEST(GgufDecoder, TokenizerAndStopTokensComeFromTheFile) {
  auto lm = rankemb::models::load_causal_lm(rankemb::test::asset("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"));
  const auto* tok = lm->tokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->kind(), "byte-bpe");
  EXPECT_EQ(tok->token_to_id("<|im_end|>"), 2);
  EXPECT_EQ(lm->stop_token_ids(), (std::vector<std::int64_t>{2}));  // eos = <|im_end|>
  // ChatML markers are single special tokens, and nothing is added around a text.
  EXPECT_EQ(tok->encode("<|im_start|>user"), (std::vector<rankemb::text::TokenId>{1, 4093}));
}

// Decode steps of 1-8 sequences multiply by the file's Q4_1/Q8_0 blocks (kernels/quant_matmul) in
// the fused one-token step (plain loops, each row attending its own slot's cache); wider batches
// and RANKEMB_KERNELS=off use the float32 weights through libtorch. Both give the same logits
// within 1e-4, and not the same bits (else the quantized path did not run): slots of different
// lengths, one slot alone, slots out of order, several steps in a row.
TEST(GgufDecoder, QuantizedDecodeStepsMatchFloat32Weights) {
  auto lm = rankemb::models::load_causal_lm(rankemb::test::asset("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"));
  const std::vector<std::vector<std::int64_t>> prompts{{1, 504, 3458, 314, 253}, {1, 18, 2114}, {1, 7, 9, 11, 13, 15, 17}};
  auto step = [&](bool kernels) {
    const bool before = rankemb::models::kernels::enabled();
    rankemb::models::kernels::set_enabled(kernels);
    lm->reserve(prompts.size(), 32);
    lm->forward({0, 1, 2}, prompts);
    torch::Tensor one = lm->forward({1}, {{42}});            // one sequence
    std::vector<torch::Tensor> steps{lm->forward({0, 1, 2}, {{5}, {6}, {7}}), lm->forward({2, 0}, {{8}, {9}})};
    for (std::int64_t t = 0; t < 4; ++t) steps.push_back(lm->forward({0, 1, 2}, {{10 + t}, {20 + t}, {30 + t}}));
    rankemb::models::kernels::set_enabled(before);
    return std::pair{one, torch::cat(steps, 0)};
  };
  const auto [one_q, three_q] = step(true);
  const auto [one_f, three_f] = step(false);
  for (const auto& [q, f] : {std::pair{one_q, one_f}, std::pair{three_q, three_f}}) {
    const double diff = (q - f).abs().max().item<double>();
    EXPECT_LT(diff, kTol);
    EXPECT_GT(diff, 0.0) << "the quantized product did not run";
    EXPECT_TRUE(torch::equal(q.argmax(-1), f.argmax(-1)));
  }
}
