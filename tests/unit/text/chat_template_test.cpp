// Chat templates against what the models' own Jinja templates render
// (tests/fixtures/text/chat_templates.expected.jsonl, scripts/regen/chat_templates.py).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/temp_dir.h"
#include "common/expect_error.h"
#include "common/corpus.h"
#include "common/test_paths.h"
#include "rankemb/text/chat_template.h"
#include "rankemb/util/error.h"

namespace fs = std::filesystem;
namespace t = rankemb::text;
using rankemb::Error;
using rankemb::ErrorCode;
using rankemb::test::asset;

namespace {

using rankemb::test::expect_error;

constexpr const char* kLlamaBos = "<|begin_of_text|>";

t::ChatOptions options_of(const nlohmann::json& e) {
  t::ChatOptions o;
  if (!e["system"].is_null()) o.system = e["system"].get<std::string>();
  if (!e["enable_thinking"].is_null()) o.enable_thinking = e["enable_thinking"].get<bool>();
  return o;
}

using rankemb::test::TempDir;

}  // namespace

// SmolLM2's template (from its GGUF) adds a default system turn when the conversation has none,
// which no hard-coded format reproduces; jinja2 renders it (the Jinja fixtures compare more).
TEST(ChatTemplate, SmolLM2TemplateFromGgufAddsItsDefaultSystemTurn) {
  const auto chat = t::load_model_chat_template(asset("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"));
  ASSERT_TRUE(chat.has_value());
  EXPECT_EQ(chat->bos_token, "<|im_start|>");
  EXPECT_EQ(t::render_user_turn(*chat, "Rewrite: a cat."),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nRewrite: a cat.<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t::render_user_turn(*chat, "hi", {.system = "Be brief."}),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_FALSE(t::load_model_chat_template(rankemb::test::shared_model("tinystories-656k")).has_value());
}

TEST(ChatTemplate, AnUnparsableModelTemplateIsAnErrorNamingTheFile) {
  TempDir dir("bad_template");
  dir.write("tokenizer_config.json", R"({"chat_template": "{% macro m() %}x{% endmacro %}{{ m() }}"})");
  expect_error([&] { t::load_model_chat_template(dir.path()); }, ErrorCode::ModelFormat, "tokenizer_config.json");
}

TEST(ChatTemplate, MatchesReferenceTemplates) {
  const auto& corpus = rankemb::test::parity_corpus();
  auto rows = rankemb::test::read_jsonl_fixture(rankemb::test::fixtures_dir() / "text" / "chat_templates.expected.jsonl");
  ASSERT_GT(rows.size(), 1000u);
  std::size_t mismatches = 0, llama = 0, chatml = 0, with_system = 0, no_think = 0, model_mismatches = 0;
  // The same prompts through each model's own template (jinja.h), the default of `auto`.
  const auto llama_own = t::load_model_chat_template(asset("llama3-tokenizer/models"));
  const auto qwen_own = t::load_model_chat_template(asset("qwen3-tokenizer/models"));
  ASSERT_TRUE(llama_own && qwen_own);
  EXPECT_EQ(llama_own->bos_token, kLlamaBos);
  for (const auto& e : rows) {
    auto format = t::parse_chat_format(e["format"].get<std::string>());
    ASSERT_TRUE(format.has_value());
    auto index = e["index"].get<std::size_t>();
    ASSERT_LT(index, corpus.size());
    const auto& entry = corpus[index];
    auto options = options_of(e);
    std::string got = t::render_user_turn(*format, entry.text, options, kLlamaBos);
    const auto& want = e["rendered"].get_ref<const std::string&>();
    (*format == t::ChatFormat::Llama3 ? llama : chatml)++;
    with_system += !options.system.empty();
    no_think += !options.enable_thinking;
    if (got != want && ++mismatches <= 5) {
      ADD_FAILURE() << entry.where << " format=" << e["format"] << " system=" << e["system"]
                    << " enable_thinking=" << e["enable_thinking"] << "\n text: " << nlohmann::json(entry.text)
                    << "\n expected: " << nlohmann::json(want) << "\n got:      " << nlohmann::json(got);
    }
    const std::string own = t::render_user_turn(*format == t::ChatFormat::Llama3 ? *llama_own : *qwen_own, entry.text, options);
    if (own != want && ++model_mismatches <= 5) {
      ADD_FAILURE() << "model template, " << entry.where << " format=" << e["format"] << "\n expected: " << nlohmann::json(want)
                    << "\n got:      " << nlohmann::json(own);
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << rows.size() << " rendered prompts";
  EXPECT_EQ(model_mismatches, 0u) << "of " << rows.size() << " prompts through the models' own templates";
  // The fixture covers every variant the regen script promises.
  EXPECT_GT(llama, 300u);
  EXPECT_GT(chatml, 600u);
  EXPECT_GT(with_system, 30u);
  EXPECT_GT(no_think, 300u);
}

TEST(ChatTemplate, ExactShapes) {
  EXPECT_EQ(t::render_user_turn(t::ChatFormat::None, "  Once upon a time"), "  Once upon a time");
  EXPECT_EQ(t::render_user_turn(t::ChatFormat::Llama3, " hi\n", {}, kLlamaBos),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Without a bos_token the Llama-3 prompt starts at the header (the tokenizer may add BOS).
  EXPECT_EQ(t::render_user_turn(t::ChatFormat::Llama3, "hi", {.system = "sys"}),
            "<|start_header_id|>system<|end_header_id|>\n\nsys<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
            "hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(t::render_user_turn(t::ChatFormat::ChatML, " hi\n", {.system = " s "}, kLlamaBos),
            "<|im_start|>system\n s <|im_end|>\n<|im_start|>user\n hi\n<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t::render_user_turn(t::ChatFormat::ChatML, "hi", {.system = {}, .enable_thinking = false}),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  // Llama-3 trims like Python's str.strip(): U+001F and U+3000 go, U+200B stays.
  EXPECT_EQ(t::render_user_turn(t::ChatFormat::Llama3, "\x1f\xe3\x80\x80x\xe2\x80\x8b"),
            "<|start_header_id|>user<|end_header_id|>\n\nx\xe2\x80\x8b<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, RejectsBadInput) {
  expect_error([] { t::render_user_turn(t::ChatFormat::Llama3, "ok\xff"); }, ErrorCode::Input, "chat prompt");
  expect_error([] { t::render_user_turn(t::ChatFormat::ChatML, "ok", {.system = "\xc3"}); }, ErrorCode::Input,
               "system message");
  expect_error([] { t::render_user_turn(t::ChatFormat::None, "ok", {.system = "s"}); }, ErrorCode::Usage, "none");
}

TEST(ChatTemplate, ParsesFormatNames) {
  EXPECT_EQ(t::parse_chat_format("none"), t::ChatFormat::None);
  EXPECT_EQ(t::parse_chat_format("llama3"), t::ChatFormat::Llama3);
  EXPECT_EQ(t::parse_chat_format("chatml"), t::ChatFormat::ChatML);
  EXPECT_EQ(t::parse_chat_format("auto"), std::nullopt);
  for (auto f : {t::ChatFormat::None, t::ChatFormat::Llama3, t::ChatFormat::ChatML}) {
    EXPECT_EQ(t::parse_chat_format(t::to_string(f)), f);
  }
  expect_error([] { t::parse_chat_format("llama-3"); }, ErrorCode::Usage, "llama-3");
}

TEST(ChatTemplate, DetectsFormatOfAssetDirs) {
  EXPECT_EQ(t::detect_chat_format(asset("llama3-tokenizer/models")), t::ChatFormat::Llama3);
  EXPECT_EQ(t::detect_chat_format(asset("qwen3-tokenizer/models")), t::ChatFormat::ChatML);
  EXPECT_EQ(t::detect_chat_format(asset("llama3-tokenizer/models/tokenizer_config.json")), t::ChatFormat::Llama3);
  EXPECT_EQ(t::detect_chat_format(rankemb::test::shared_model("tinystories-656k")), t::ChatFormat::None);
  EXPECT_EQ(t::chat_bos_token(asset("llama3-tokenizer/models")), kLlamaBos);
  EXPECT_EQ(t::chat_bos_token(asset("qwen3-tokenizer/models")), "");  // "bos_token": null
}

TEST(ChatTemplate, DetectsFromConfigVariants) {
  TempDir dir;
  EXPECT_EQ(t::detect_chat_format(dir.path()), t::ChatFormat::None);  // no tokenizer_config.json
  dir.write("tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "x"},
      {"name": "default", "template": "{{ '<|im_start|>' }}"}], "bos_token": {"content": "<s>"}})");
  EXPECT_EQ(t::detect_chat_format(dir.path()), t::ChatFormat::ChatML);
  EXPECT_EQ(t::chat_bos_token(dir.path()), "<s>");
  dir.write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  EXPECT_EQ(t::detect_chat_format(dir.path()), t::ChatFormat::None);
  dir.write("chat_template.jinja", "{{ '<|start_header_id|>' }}");
  EXPECT_EQ(t::detect_chat_format(dir.path()), t::ChatFormat::Llama3);
}

TEST(ChatTemplate, DetectRejectsMalformedConfigs) {
  TempDir dir;
  auto file = dir.write("tokenizer_config.json", "{\"chat_template\": \"x\",\n  oops}");
  expect_error([&] { t::detect_chat_format(dir.path()); }, ErrorCode::ModelFormat, "tokenizer_config.json:2:");
  dir.write("tokenizer_config.json", "[1, 2]");
  expect_error([&] { t::detect_chat_format(dir.path()); }, ErrorCode::ModelFormat, "expected a JSON object");
  dir.write("tokenizer_config.json", R"({"chat_template": 7})");
  expect_error([&] { t::detect_chat_format(dir.path()); }, ErrorCode::ModelFormat, "chat_template is a number");
  dir.write("tokenizer_config.json", R"({"chat_template": [{"name": "rag", "template": "x"}]})");
  expect_error([&] { t::detect_chat_format(dir.path()); }, ErrorCode::ModelFormat, "default");
  dir.write("tokenizer_config.json", R"({"chat_template": "[INST] {{ messages[0].content }} [/INST]"})");
  expect_error([&] { t::detect_chat_format(dir.path()); }, ErrorCode::ModelFormat, "neither Llama-3");
  dir.write("tokenizer_config.json", R"({"bos_token": 1})");
  expect_error([&] { t::chat_bos_token(dir.path()); }, ErrorCode::ModelFormat, "bos_token");
  // Unreadable: a directory where the file should be.
  fs::remove(file);
  fs::create_directory(file);
  expect_error([&] { t::detect_chat_format(dir.path()); }, ErrorCode::ModelFormat, "tokenizer_config.json: not a regular file");
  expect_error([&] { t::detect_chat_format(dir.path() / "missing"); }, ErrorCode::ModelFormat, "no such model directory");
}
