#include "rankemb/models/config.h"

#include <gtest/gtest.h>


#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "common/test_paths.h"
#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace m = rankemb::models;
namespace fs = std::filesystem;
using nlohmann::json;
using rankemb::ErrorCode;

namespace {

fs::path config_fixture(const std::string& name) { return rankemb::test::fixtures_dir() / "models" / "configs" / name; }

m::HfConfig parse(const std::string& text) { return m::parse_hf_config(json::parse(text), "test/config.json"); }

// Parsing `text` fails with ModelFormat and a message holding every needle.
void expect_error(const std::string& text, std::vector<std::string> needles) {
  try {
    parse(text);
    ADD_FAILURE() << "accepted: " << text;
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ModelFormat) << e.what();
    std::string what = e.what();
    EXPECT_NE(what.find("test/config.json"), std::string::npos) << what;
    for (const auto& n : needles) EXPECT_NE(what.find(n), std::string::npos) << "want \"" << n << "\" in: " << what;
  }
}

using Ids = std::vector<std::int64_t>;

}  // namespace

TEST(HfConfig, RealMiniLM) {
  m::HfConfig c = m::load_hf_config(rankemb::test::asset("all-MiniLM-L6-v2"));  // directory form
  EXPECT_EQ(c.model_type, "bert");
  EXPECT_EQ(c.architectures, std::vector<std::string>{"BertModel"});
  EXPECT_EQ(c.vocab_size, 30522);
  EXPECT_EQ(c.hidden_size, 384);
  EXPECT_EQ(c.num_hidden_layers, 6);
  EXPECT_EQ(c.num_attention_heads, 12);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.hidden_act, "gelu");
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_EQ(c.type_vocab_size, 2);
  EXPECT_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_EQ(c.pad_token_id, 0);
  EXPECT_EQ(c.position_embedding_type, "absolute");
  EXPECT_TRUE(c.bos_token_ids.empty());
  EXPECT_FALSE(c.is_decoder());
}

TEST(HfConfig, RealTinyStories) {
  m::HfConfig c = m::load_hf_config(rankemb::test::shared_model("tinystories-656k/config.json"));
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_TRUE(c.is_decoder());
  EXPECT_EQ(c.vocab_size, 2048);
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.intermediate_size, 384);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, m::RopeType::Default);  // "rope_scaling": null
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_ids, Ids{1});
  EXPECT_EQ(c.eos_token_ids, Ids{2});
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_EQ(c.torch_dtype, "float32");
}

TEST(HfConfig, Llama3WithRopeScaling) {
  m::HfConfig c = m::load_hf_config(config_fixture("llama3.json"));
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_scaling.type, m::RopeType::Llama3);
  EXPECT_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.bos_token_ids, Ids{128000});
  EXPECT_EQ(c.eos_token_ids, (Ids{128001, 128008, 128009}));
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_FALSE(c.sliding_window);
}

TEST(HfConfig, Mistral) {
  m::HfConfig c = m::load_hf_config(config_fixture("mistral.json"));
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
}

TEST(HfConfig, Qwen2AlwaysHasQkvBias) {
  m::HfConfig c = m::load_hf_config(config_fixture("qwen2.json"));
  EXPECT_EQ(c.hidden_size, 896);
  EXPECT_EQ(c.num_attention_heads, 14);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_proj_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_FALSE(c.sliding_window);  // use_sliding_window false
  EXPECT_EQ(c.eos_token_ids, Ids{151643});
}

TEST(HfConfig, Qwen3ExplicitHeadDim) {
  m::HfConfig c = m::load_hf_config(config_fixture("qwen3.json"));
  EXPECT_EQ(c.hidden_size, 1024);
  EXPECT_EQ(c.num_attention_heads, 16);
  EXPECT_EQ(c.head_dim, 128);  // not 1024 / 16
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(c.rope_theta, 1e6);  // integer in the file
  EXPECT_FALSE(c.sliding_window);
  EXPECT_EQ(c.rope_scaling.type, m::RopeType::Default);
}

TEST(HfConfig, Roberta) {
  m::HfConfig c = m::load_hf_config(config_fixture("roberta.json"));
  EXPECT_EQ(c.vocab_size, 50265);
  EXPECT_EQ(c.max_position_embeddings, 514);
  EXPECT_EQ(c.type_vocab_size, 1);
  EXPECT_EQ(c.layer_norm_eps, 1e-5);
  EXPECT_EQ(c.pad_token_id, 1);
  EXPECT_EQ(c.bos_token_ids, Ids{0});
  EXPECT_EQ(c.eos_token_ids, Ids{2});
}

TEST(HfConfig, MpnetDefaultsAreMPNetConfigs) {
  // transformers' MPNetConfig(): vocab 30527, pad 1, bos 0, eos 2, 32 relative buckets, eps 1e-12.
  m::HfConfig c = parse(R"({"model_type":"mpnet"})");
  EXPECT_EQ(c.vocab_size, 30527);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_EQ(c.relative_attention_num_buckets, 32);
  EXPECT_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_EQ(c.type_vocab_size, 0);
  EXPECT_EQ(c.pad_token_id, 1);
  EXPECT_EQ(c.bos_token_ids, Ids{0});
  EXPECT_EQ(c.eos_token_ids, Ids{2});
  EXPECT_EQ(c.head_dim, 64);
  expect_error(R"({"model_type":"mpnet","relative_attention_num_buckets":"32"})", {"relative_attention_num_buckets"});
}

TEST(HfConfig, UseLite) {
  m::HfConfig c = m::load_hf_config(config_fixture("use-lite.json"));
  EXPECT_EQ(c.vocab_size, 8002);
  EXPECT_EQ(c.embedding_size, 256);
  EXPECT_EQ(c.hidden_size, 512);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.output_dim, 512);
  EXPECT_EQ(c.max_position_embeddings, 128);
  EXPECT_EQ(c.layer_norm_eps, 1e-6);
  EXPECT_FALSE(c.is_decoder());
}

// Missing fields take the transformers config class defaults.
TEST(HfConfig, TransformersDefaults) {
  m::HfConfig bert = parse(R"({"model_type":"bert"})");
  EXPECT_EQ(bert.vocab_size, 30522);
  EXPECT_EQ(bert.hidden_size, 768);
  EXPECT_EQ(bert.num_hidden_layers, 12);
  EXPECT_EQ(bert.num_attention_heads, 12);
  EXPECT_EQ(bert.intermediate_size, 3072);
  EXPECT_EQ(bert.hidden_act, "gelu");
  EXPECT_EQ(bert.max_position_embeddings, 512);
  EXPECT_EQ(bert.type_vocab_size, 2);
  EXPECT_EQ(bert.layer_norm_eps, 1e-12);
  EXPECT_EQ(bert.pad_token_id, 0);
  EXPECT_EQ(bert.position_embedding_type, "absolute");

  m::HfConfig roberta = parse(R"({"model_type":"roberta"})");
  EXPECT_EQ(roberta.vocab_size, 50265);
  EXPECT_EQ(roberta.pad_token_id, 1);
  EXPECT_EQ(roberta.bos_token_ids, Ids{0});
  EXPECT_EQ(roberta.eos_token_ids, Ids{2});

  m::HfConfig llama = parse(R"({"model_type":"llama"})");
  EXPECT_EQ(llama.vocab_size, 32000);
  EXPECT_EQ(llama.hidden_size, 4096);
  EXPECT_EQ(llama.intermediate_size, 11008);
  EXPECT_EQ(llama.num_hidden_layers, 32);
  EXPECT_EQ(llama.num_attention_heads, 32);
  EXPECT_EQ(llama.num_key_value_heads, 32);  // None -> num_attention_heads
  EXPECT_EQ(llama.head_dim, 128);
  EXPECT_EQ(llama.hidden_act, "silu");
  EXPECT_EQ(llama.max_position_embeddings, 2048);
  EXPECT_EQ(llama.rms_norm_eps, 1e-6);
  EXPECT_EQ(llama.rope_theta, 10000.0);
  EXPECT_FALSE(llama.pad_token_id);
  EXPECT_EQ(llama.bos_token_ids, Ids{1});
  EXPECT_EQ(llama.eos_token_ids, Ids{2});
  EXPECT_FALSE(llama.tie_word_embeddings);
  EXPECT_FALSE(llama.attention_bias);

  m::HfConfig mistral = parse(R"({"model_type":"mistral"})");
  EXPECT_EQ(mistral.intermediate_size, 14336);
  EXPECT_EQ(mistral.num_key_value_heads, 8);
  EXPECT_EQ(mistral.max_position_embeddings, 131072);
  EXPECT_EQ(mistral.sliding_window, 4096);
  EXPECT_FALSE(parse(R"({"model_type":"mistral","sliding_window":null})").sliding_window);

  m::HfConfig qwen2 = parse(R"({"model_type":"qwen2"})");
  EXPECT_EQ(qwen2.vocab_size, 151936);
  EXPECT_EQ(qwen2.intermediate_size, 22016);
  EXPECT_EQ(qwen2.num_key_value_heads, 32);
  EXPECT_EQ(qwen2.max_position_embeddings, 32768);
  EXPECT_TRUE(qwen2.bos_token_ids.empty());
  EXPECT_TRUE(qwen2.eos_token_ids.empty());
  EXPECT_FALSE(qwen2.sliding_window);
  EXPECT_EQ(parse(R"({"model_type":"qwen2","use_sliding_window":true})").sliding_window, 4096);

  m::HfConfig qwen3 = parse(R"({"model_type":"qwen3","hidden_size":1000,"num_attention_heads":10,"num_key_value_heads":null})");
  EXPECT_EQ(qwen3.head_dim, 128);            // Qwen3Config default, not hidden / heads
  EXPECT_EQ(qwen3.num_key_value_heads, 10);  // null -> num_attention_heads
}

TEST(HfConfig, RopeVariants) {
  m::HfConfig linear = parse(R"({"model_type":"llama","rope_scaling":{"type":"linear","factor":2.0}})");
  EXPECT_EQ(linear.rope_scaling.type, m::RopeType::Linear);  // legacy "type" key
  EXPECT_EQ(linear.rope_scaling.factor, 2.0);
  EXPECT_EQ(parse(R"({"model_type":"llama","rope_scaling":{"rope_type":"default"}})").rope_scaling.type, m::RopeType::Default);
  // transformers 5 layout: one rope_parameters object.
  m::HfConfig v5 = parse(R"({"model_type":"llama","dtype":"bfloat16","rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,
      "factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}})");
  EXPECT_EQ(v5.rope_theta, 500000.0);
  EXPECT_EQ(v5.rope_scaling.type, m::RopeType::Llama3);
  EXPECT_EQ(v5.rope_scaling.factor, 8.0);
  EXPECT_EQ(v5.torch_dtype, "bfloat16");
}

TEST(HfConfig, Errors) {
  expect_error(R"({"hidden_size":384})", {"missing required field \"model_type\""});
  expect_error(R"({"model_type":"gpt2"})", {"\"gpt2\" is not supported", "bert, roberta, mpnet, llama, mistral, qwen2, qwen3, use-lite"});
  expect_error(R"({"model_type":7})", {"\"model_type\"", "a string"});
  expect_error(R"({"model_type":"bert","hidden_size":"384"})", {"\"hidden_size\"", "an integer", "\"384\""});
  expect_error(R"({"model_type":"bert","num_hidden_layers":6.5})", {"\"num_hidden_layers\"", "an integer"});
  expect_error(R"({"model_type":"bert","vocab_size":null})", {"\"vocab_size\"", "an integer", "null"});
  expect_error(R"({"model_type":"bert","layer_norm_eps":"1e-12"})", {"\"layer_norm_eps\"", "a number"});
  expect_error(R"({"model_type":"bert","hidden_act":1})", {"\"hidden_act\"", "a string"});
  expect_error(R"({"model_type":"bert","architectures":"BertModel"})", {"\"architectures\"", "list of strings"});
  expect_error(R"({"model_type":"llama","tie_word_embeddings":1})", {"\"tie_word_embeddings\"", "true or false"});
  expect_error(R"({"model_type":"llama","eos_token_id":["a"]})", {"\"eos_token_id\"", "list of integers"});
  expect_error(R"({"model_type":"llama","rope_scaling":{"rope_type":"yarn","factor":4.0}})",
               {"\"rope_scaling.rope_type\"", "\"yarn\" is not supported", "llama3"});
  expect_error(R"({"model_type":"llama","rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,
      "high_freq_factor":4.0}})", {"missing required field \"rope_scaling.original_max_position_embeddings\""});
  expect_error(R"({"model_type":"llama","rope_scaling":{"rope_type":"linear"}})", {"missing required field \"rope_scaling.factor\""});
  expect_error(R"({"model_type":"llama","rope_scaling":[8]})", {"\"rope_scaling\"", "an object"});
  expect_error(R"({"model_type":"llama","rope_theta":-1})", {"\"rope_theta\"", "positive"});
  expect_error(R"({"model_type":"bert","hidden_size":100,"num_attention_heads":12})", {"\"num_attention_heads\"", "divide hidden_size"});
  expect_error(R"({"model_type":"llama","num_attention_heads":32,"num_key_value_heads":5})",
               {"\"num_key_value_heads\"", "divide num_attention_heads"});
  expect_error(R"({"model_type":"bert","vocab_size":0})", {"\"vocab_size\"", "positive"});
  expect_error(R"({"model_type":"bert","vocab_size":18446744073709551615})", {"\"vocab_size\"", "an integer"});
  expect_error(R"({"model_type":"use-lite","vocab_size":8002,"embedding_size":256,"hidden_size":512,"num_hidden_layers":2,
      "num_attention_heads":4,"intermediate_size":1536,"max_position_embeddings":128})", {"missing required field \"output_dim\""});
  expect_error(R"([1,2])", {"must be a JSON object"});
}

TEST(HfConfig, FileErrorsNameTheFile) {
  rankemb::test::TempDir tmp("config");
  const fs::path dir = tmp.path();
  rankemb::io::write_atomic(dir / "config.json", "{\"model_type\": \"bert\",\n \"hidden_size\": }");
  try {
    m::load_hf_config(dir);
    ADD_FAILURE() << "accepted invalid JSON";
  } catch (const rankemb::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::ModelFormat);
    EXPECT_NE(std::string(e.what()).find((dir / "config.json").string() + ":2:"), std::string::npos) << e.what();
  }
  rankemb::io::write_atomic(dir / "config.json", R"({"model_type": "bert", "hidden_size": "x"})");
  try {
    m::load_hf_config(dir / "config.json");
    ADD_FAILURE() << "accepted a string hidden_size";
  } catch (const rankemb::Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "config.json").string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("hidden_size"), std::string::npos) << e.what();
  }
  fs::remove(dir / "config.json");
  EXPECT_THROW(m::load_hf_config(dir), rankemb::Error);
}
