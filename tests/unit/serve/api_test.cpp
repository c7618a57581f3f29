// serve/api: request parsing names the field and picks the status; response bodies have the
// shapes of OpenAI's and text-embeddings-inference's APIs; base64 against RFC 4648's vectors.
#include "rankemb/serve/api.h"

#include <gtest/gtest.h>

#include <cstring>

#include <nlohmann/json.hpp>

namespace sv = rankemb::serve;
using nlohmann::json;

namespace {

// Runs `f`, expects an ApiError with `status` whose field is `field` and message holds `needle`.
template <typename F>
void expect_api_error(F f, int status, const std::string& field, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an ApiError " << status << " (" << needle << ")";
  } catch (const sv::ApiError& e) {
    EXPECT_EQ(e.status, status) << e.what();
    EXPECT_EQ(e.field, field) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

std::vector<float> decode_base64_floats(const std::string& b64) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : b64) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<std::uint32_t>(alphabet.find(c));
    bits += 6;
    if (bits >= 8) bits -= 8, bytes.push_back(static_cast<char>((acc >> bits) & 0xFF));
  }
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

}  // namespace

TEST(ServeApi, Base64MatchesRfc4648) {
  EXPECT_EQ(sv::base64_encode(""), "");
  EXPECT_EQ(sv::base64_encode("f"), "Zg==");
  EXPECT_EQ(sv::base64_encode("fo"), "Zm8=");
  EXPECT_EQ(sv::base64_encode("foo"), "Zm9v");
  EXPECT_EQ(sv::base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(sv::base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(sv::base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(sv::base64_encode(std::string("\xff\x00\x80", 3)), "/wCA");
}

TEST(ServeApi, EmbeddingsRequest) {
  const sv::Limits limits{.max_inputs = 3, .max_input_bytes = 10};
  auto r = sv::parse_embeddings_request(R"({"input": "hi", "model": "m"})", limits);
  EXPECT_EQ(r.inputs, std::vector<std::string>{"hi"});
  EXPECT_FALSE(r.base64);
  EXPECT_EQ(r.model, "m");
  r = sv::parse_embeddings_request(R"({"input": ["a", "b"], "encoding_format": "base64", "dimensions": 4, "user": "x"})", limits);
  EXPECT_EQ(r.inputs.size(), 2u);
  EXPECT_TRUE(r.base64);
  EXPECT_EQ(r.dimensions, 4u);

  expect_api_error([&] { sv::parse_embeddings_request("{", limits); }, 400, "", "not valid JSON");
  expect_api_error([&] { sv::parse_embeddings_request("[1]", limits); }, 400, "", "JSON object");
  expect_api_error([&] { sv::parse_embeddings_request("{}", limits); }, 400, "input", "input is required");
  expect_api_error([&] { sv::parse_embeddings_request(R"({"input": 5})", limits); }, 400, "input", "string or a list");
  expect_api_error([&] { sv::parse_embeddings_request(R"({"input": []})", limits); }, 400, "input", "empty list");
  expect_api_error([&] { sv::parse_embeddings_request(R"({"input": ["a", 3]})", limits); }, 400, "input", "token-id input");
  expect_api_error([&] { sv::parse_embeddings_request(R"({"input": ["a", null]})", limits); }, 400, "input", "input[1] must be a string");
  expect_api_error([&] { sv::parse_embeddings_request(R"({"input": ["a","b","c","d"]})", limits); }, 413, "input", "4 entries");
  expect_api_error([&] { sv::parse_embeddings_request(R"({"input": "0123456789x"})", limits); }, 413, "input", "11 bytes");
  expect_api_error([&] { sv::parse_embeddings_request(R"({"input": "a", "encoding_format": "int8"})", limits); }, 400,
                   "encoding_format", "\"float\" or \"base64\"");
  expect_api_error([&] { sv::parse_embeddings_request(R"({"input": "a", "dimensions": 0})", limits); }, 400, "dimensions",
                   "positive integer");
  expect_api_error([&] { sv::parse_embeddings_request(R"({"input": "a", "dimensions": 1.5})", limits); }, 400, "dimensions",
                   "positive integer");
}

TEST(ServeApi, TeiRequests) {
  const sv::Limits limits;
  auto e = sv::parse_embed_request(R"({"inputs": ["a"], "normalize": false, "truncate": true})", limits);
  EXPECT_FALSE(e.normalize);
  EXPECT_TRUE(e.truncate);
  EXPECT_TRUE(sv::parse_embed_request(R"({"inputs": "a"})", limits).normalize);
  expect_api_error([&] { sv::parse_embed_request(R"({"inputs": "a", "normalize": "yes"})", limits); }, 400, "normalize",
                   "true or false");
  auto r = sv::parse_rerank_request(R"({"query": "q", "texts": ["a", "b"], "return_text": true})", limits);
  EXPECT_EQ(r.query, "q");
  EXPECT_EQ(r.texts.size(), 2u);
  EXPECT_TRUE(r.return_text);
  expect_api_error([&] { sv::parse_rerank_request(R"({"texts": ["a"]})", limits); }, 400, "query", "query is required");
  expect_api_error([&] { sv::parse_rerank_request(R"({"query": "q", "texts": "a"})", limits); }, 400, "texts", "list of strings");
  expect_api_error([&] { sv::parse_rerank_request(R"({"query": 1, "texts": ["a"]})", limits); }, 400, "query", "must be a string");
  auto s = sv::parse_search_request(R"({"query": "q", "k": 3})", limits);
  EXPECT_EQ(s.k, 3u);
  expect_api_error([&] { sv::parse_search_request(R"({"query": "q", "k": 100000})", limits); }, 400, "k", "at most 1000");
  // Invalid UTF-8 inside a JSON string is refused (by the JSON parser or by us), never passed on.
  expect_api_error([&] { sv::parse_embed_request("{\"inputs\": \"\xff\"}", limits); }, 400, "", "not valid JSON");
}

TEST(ServeApi, ResponseShapes) {
  const std::vector<std::vector<float>> rows = {{1.5f, -2.0f}, {0.25f, 3.0f}};
  json j = json::parse(sv::embeddings_response(rows, false, "mini", 7));
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "mini");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(j["usage"]["total_tokens"], 7);
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][1]["object"], "embedding");
  EXPECT_EQ(j["data"][1]["index"], 1);
  EXPECT_EQ(j["data"][1]["embedding"].get<std::vector<float>>(), rows[1]);
  j = json::parse(sv::embeddings_response(rows, true, "mini", 7));
  EXPECT_EQ(decode_base64_floats(j["data"][0]["embedding"].get<std::string>()), rows[0]);

  EXPECT_EQ(json::parse(sv::embed_response(rows)).get<std::vector<std::vector<float>>>(), rows);

  const std::vector<std::string> texts = {"a", "b", "c"};
  j = json::parse(sv::rerank_response({0.1f, 0.9f, 0.5f}, &texts));
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["index"], 1);
  EXPECT_EQ(j[0]["text"], "b");
  EXPECT_EQ(j[1]["index"], 2);
  EXPECT_EQ(j[2]["index"], 0);
  EXPECT_FALSE(json::parse(sv::rerank_response({0.1f}, nullptr))[0].contains("text"));

  j = json::parse(sv::error_body(sv::Dialect::OpenAi, 400, "input is required", "input"));
  EXPECT_EQ(j["error"]["message"], "input is required");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "input");
  EXPECT_TRUE(j["error"]["code"].is_null());
  j = json::parse(sv::error_body(sv::Dialect::Tei, 429, "busy"));
  EXPECT_EQ(j["error"], "busy");
  EXPECT_EQ(j["error_type"], "Overloaded");
}

TEST(ServeApi, CompletionRequest) {
  const sv::LlmLimits limits{.max_prompts = 2, .max_prompt_bytes = 16, .max_tokens = 64, .max_steps = 8};
  auto r = sv::parse_completion_request(R"({"prompt": "Once", "model": "m"})", limits);
  EXPECT_EQ(r.prompts, std::vector<std::string>{"Once"});
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.max_tokens, 16u);  // OpenAI's defaults
  EXPECT_EQ(r.temperature, 1.0);
  EXPECT_EQ(r.top_p, 1.0);
  EXPECT_EQ(r.guidance_scale, 1.0);
  EXPECT_FALSE(r.chat);
  EXPECT_TRUE(r.stop.empty());
  r = sv::parse_completion_request(R"({"prompt": ["a", "b"], "max_tokens": 64, "temperature": 0, "top_p": 0.5, "seed": 7,
      "stop": "\n", "negative_prompt": "c", "guidance_scale": 2.5, "chat": true, "n": 1, "stream": false,
      "logprobs": null, "echo": false, "user": "u", "presence_penalty": 0, "logit_bias": {}})",
                                  limits);
  EXPECT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.max_tokens, 64u);
  EXPECT_EQ(r.temperature, 0.0);
  EXPECT_EQ(r.top_p, 0.5);
  EXPECT_EQ(r.seed, 7u);
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(r.negative_prompt, "c");
  EXPECT_EQ(r.guidance_scale, 2.5);
  EXPECT_TRUE(r.chat);
  EXPECT_EQ(sv::parse_completion_request(R"({"prompt": "a", "stop": ["x", "y"]})", limits).stop.size(), 2u);

  const auto bad = [&](const std::string& body, int status, const std::string& field, const std::string& needle) {
    expect_api_error([&] { sv::parse_completion_request(body, limits); }, status, field, needle);
  };
  bad("{", 400, "", "not valid JSON");
  bad("{}", 400, "prompt", "prompt is required");
  bad(R"({"prompt": [1, 2]})", 400, "prompt", "token-id input");
  bad(R"({"prompt": ["a", "b", "c"]})", 413, "prompt", "3 entries");
  bad(R"({"prompt": "0123456789abcdefg"})", 413, "prompt", "17 bytes");
  bad(R"({"prompt": "a", "max_tokens": 0})", 400, "max_tokens", "positive integer");
  bad(R"({"prompt": "a", "max_tokens": 65})", 400, "max_tokens", "at most 64");
  bad(R"({"prompt": "a", "max_tokens": "5"})", 400, "max_tokens", "positive integer");
  bad(R"({"prompt": "a", "temperature": 2.5})", 400, "temperature", "between 0 and 2");
  bad(R"({"prompt": "a", "temperature": "hot"})", 400, "temperature", "must be a number");
  bad(R"({"prompt": "a", "top_p": 0})", 400, "top_p", "more than 0");
  bad(R"({"prompt": "a", "top_p": 1.5})", 400, "top_p", "between 0 and 1");
  bad(R"({"prompt": "a", "seed": -1})", 400, "seed", "non-negative integer");
  bad(R"({"prompt": "a", "stop": ["a", "b", "c", "d", "e"]})", 413, "stop", "5 entries");
  bad(R"({"prompt": "a", "stop": [""]})", 400, "stop", "must not be empty");
  bad(R"({"prompt": "a", "stop": 3})", 400, "stop", "string or a list");
  bad(R"({"prompt": "a", "guidance_scale": 2})", 400, "negative_prompt", "needs a negative_prompt");
  bad(R"({"prompt": "a", "negative_prompt": "b", "guidance_scale": 101})", 400, "guidance_scale", "between 0 and 100");
  bad(R"({"prompt": "a", "negative_prompt": 3})", 400, "negative_prompt", "must be a string");
  bad(R"({"prompt": "a", "negative_prompt": "0123456789abcdefg"})", 413, "negative_prompt", "17 bytes");
  bad(R"({"prompt": "a", "chat": 1})", 400, "chat", "true or false");
  bad(R"({"prompt": "a", "n": 2})", 400, "n", "not supported");
  bad(R"({"prompt": "a", "stream": true})", 400, "stream", "not supported");
  bad(R"({"prompt": "a", "logprobs": 1})", 400, "logprobs", "not supported");
  bad(R"({"prompt": "a", "echo": true})", 400, "echo", "not supported");
  bad(R"({"prompt": "a", "best_of": 3})", 400, "best_of", "not supported");
  bad(R"({"prompt": "a", "suffix": "z"})", 400, "suffix", "not supported");
  bad(R"({"prompt": "a", "frequency_penalty": 0.5})", 400, "frequency_penalty", "not supported");
  bad(R"({"prompt": "a", "logit_bias": {"5": 1}})", 400, "logit_bias", "not supported");
}

TEST(ServeApi, ChainRequest) {
  const sv::LlmLimits limits{.max_prompts = 2, .max_prompt_bytes = 32, .max_tokens = 64, .max_steps = 8};
  auto r = sv::parse_chain_request(R"({"seed": "A man plays.", "steps": 3})", limits);
  EXPECT_EQ(r.seed, "A man plays.");
  EXPECT_EQ(r.steps, 3u);
  EXPECT_EQ(r.id, 0u);
  EXPECT_FALSE(r.guidance_scale);
  EXPECT_FALSE(r.max_tokens);
  EXPECT_EQ(r.temperature, 0.0);  // generate's defaults: greedy
  EXPECT_EQ(r.top_p, 1.0);
  EXPECT_EQ(r.random_seed, 0u);
  r = sv::parse_chain_request(R"({"seed": " x ", "steps": 8, "id": 41, "guidance_scale": 3, "max_tokens": 64,
      "temperature": 0.8, "top_p": 0.9, "random_seed": 5, "model": "ignored"})",
                              limits);
  EXPECT_EQ(r.seed, " x ") << "stripped later, as generate strips a seed line";
  EXPECT_EQ(r.id, 41u);
  EXPECT_EQ(r.guidance_scale, 3.0);
  EXPECT_EQ(r.max_tokens, 64u);
  EXPECT_EQ(r.temperature, 0.8);
  EXPECT_EQ(r.top_p, 0.9);
  EXPECT_EQ(r.random_seed, 5u);

  const auto bad = [&](const std::string& body, int status, const std::string& field, const std::string& needle) {
    expect_api_error([&] { sv::parse_chain_request(body, limits); }, status, field, needle);
  };
  bad(R"({"steps": 2})", 400, "seed", "seed is required");
  bad(R"({"seed": 5, "steps": 2})", 400, "seed", "random_seed");
  bad(R"({"seed": "", "steps": 2})", 400, "seed", "must not be empty");
  bad(R"({"seed": "a\nb", "steps": 2})", 400, "seed", "one line");
  bad(R"({"seed": "0123456789012345678901234567890123", "steps": 2})", 413, "seed", "34 bytes");
  bad(R"({"seed": "a"})", 400, "steps", "steps is required");
  bad(R"({"seed": "a", "steps": 0})", 400, "steps", "positive integer");
  bad(R"({"seed": "a", "steps": 9})", 400, "steps", "at most 8");
  bad(R"({"seed": "a", "steps": 2, "id": -3})", 400, "id", "non-negative integer");
  bad(R"({"seed": "a", "steps": 2, "id": 1.5})", 400, "id", "non-negative integer");
  bad(R"({"seed": "a", "steps": 2, "guidance_scale": "big"})", 400, "guidance_scale", "must be a number");
  bad(R"({"seed": "a", "steps": 2, "max_tokens": 65})", 400, "max_tokens", "at most 64");
  bad(R"({"seed": "a", "steps": 2, "temperature": -1})", 400, "temperature", "between 0 and 2");
  bad(R"({"seed": "a", "steps": 2, "top_p": 0})", 400, "top_p", "more than 0");
  bad(R"({"seed": "a", "steps": 2, "random_seed": "x"})", 400, "random_seed", "non-negative integer");
  bad(R"({"seed": "a", "steps": 2, "guidance": 2})", 400, "guidance", "unknown field");
}

TEST(ServeApi, CompletionsResponse) {
  const std::vector<sv::CompletionChoice> choices = {{"Hello", false, 3, 2}, {std::string("cut \xe2\x82", 6), true, 4, 8}};
  json j = json::parse(sv::completions_response(choices, "cmpl-1", 1700000000, "smol"));
  EXPECT_EQ(j["id"], "cmpl-1");
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "smol");
  ASSERT_EQ(j["choices"].size(), 2u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["text"], "Hello");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["choices"][1]["finish_reason"], "length");
  EXPECT_EQ(j["choices"][1]["text"], "cut \xef\xbf\xbd") << "a sequence cut by max_tokens becomes U+FFFD";
  EXPECT_EQ(j["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(j["usage"]["completion_tokens"], 10);
  EXPECT_EQ(j["usage"]["total_tokens"], 17);
}
