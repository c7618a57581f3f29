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
