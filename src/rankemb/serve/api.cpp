#include "rankemb/serve/api.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rankemb/util/unicode.h"

namespace rankemb::serve {

using nlohmann::json;

namespace {

std::string_view tei_error_type(int status) {
  switch (status) {
    case 413: return "Validation";
    case 429: return "Overloaded";
    case 503: return "Unhealthy";
    case 500: return "Backend";
    default: return "Validation";
  }
}

std::string_view openai_error_type(int status) {
  if (status == 401) return "authentication_error";
  if (status == 429 || status == 503) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

json parse_object(std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw ApiError(400, "the request body is not valid JSON");
  if (!j.is_object()) throw ApiError(400, fmt::format("the request body must be a JSON object, got {}", j.type_name()));
  return j;
}

bool optional_bool(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw ApiError(400, fmt::format("{} must be true or false, got {}", key, it->type_name()), key);
  return it->get<bool>();
}

std::string required_string(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) throw ApiError(400, fmt::format("{} is required", key), key);
  if (!it->is_string()) throw ApiError(400, fmt::format("{} must be a string, got {}", key, it->type_name()), key);
  return it->get<std::string>();
}

void check_text(const std::string& text, const char* key, std::size_t index, const Limits& limits) {
  if (text.size() > limits.max_input_bytes)
    throw ApiError(413, fmt::format("{}[{}] has {} bytes, more than the {} allowed per input", key, index, text.size(),
                                    limits.max_input_bytes), key);
  if (auto bad = unicode::find_invalid_utf8(text))
    throw ApiError(400, fmt::format("{}[{}] is not valid UTF-8 (byte {})", key, index, *bad), key);
}

// A string or a non-empty list of strings, within the limits.
std::vector<std::string> text_list(const json& j, const char* key, const Limits& limits) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) throw ApiError(400, fmt::format("{} is required", key), key);
  std::vector<std::string> out;
  if (it->is_string()) {
    out.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    if (it->empty()) throw ApiError(400, fmt::format("{} must not be an empty list", key), key);
    if (it->size() > limits.max_inputs)
      throw ApiError(413, fmt::format("{} has {} entries, more than the {} allowed per request", key, it->size(),
                                      limits.max_inputs), key);
    out.reserve(it->size());
    for (const auto& x : *it) {
      if (x.is_number_integer() || x.is_array())
        throw ApiError(400, fmt::format("{}: token-id input is not supported; send text", key), key);
      if (!x.is_string())
        throw ApiError(400, fmt::format("{}[{}] must be a string, got {}", key, out.size(), x.type_name()), key);
      out.push_back(x.get<std::string>());
    }
  } else {
    throw ApiError(400, fmt::format("{} must be a string or a list of strings, got {}", key, it->type_name()), key);
  }
  for (std::size_t i = 0; i < out.size(); ++i) check_text(out[i], key, i, limits);
  return out;
}

std::size_t positive_size(const json& j, const char* key, std::size_t fallback, std::size_t max) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() || it->get<std::int64_t>() <= 0)
    throw ApiError(400, fmt::format("{} must be a positive integer, got {}", key, it->dump()), key);
  const auto v = it->get<std::uint64_t>();
  if (v > max) throw ApiError(400, fmt::format("{} must be at most {}, got {}", key, max, v), key);
  return static_cast<std::size_t>(v);
}

json float_list(const std::vector<float>& row) {
  json a = json::array();
  for (float v : row) a.push_back(v);
  return a;
}

}  // namespace

std::string error_body(Dialect dialect, int status, std::string_view message, std::string_view field) {
  if (dialect == Dialect::Tei) return json{{"error", message}, {"error_type", tei_error_type(status)}}.dump();
  return json{{"error",
               {{"message", message},
                {"type", openai_error_type(status)},
                {"param", field.empty() ? json(nullptr) : json(field)},
                {"code", nullptr}}}}
      .dump();
}

EmbeddingsRequest parse_embeddings_request(std::string_view body, const Limits& limits) {
  const json j = parse_object(body);
  EmbeddingsRequest r;
  r.inputs = text_list(j, "input", limits);
  if (auto it = j.find("encoding_format"); it != j.end() && !it->is_null()) {
    if (!it->is_string() || (*it != "float" && *it != "base64"))
      throw ApiError(400, fmt::format("encoding_format must be \"float\" or \"base64\", got {}", it->dump()),
                     "encoding_format");
    r.base64 = *it == "base64";
  }
  if (j.contains("dimensions") && !j["dimensions"].is_null()) r.dimensions = positive_size(j, "dimensions", 0, 1 << 20);
  if (auto it = j.find("model"); it != j.end() && it->is_string()) r.model = it->get<std::string>();
  return r;
}

EmbedRequest parse_embed_request(std::string_view body, const Limits& limits) {
  const json j = parse_object(body);
  EmbedRequest r;
  r.inputs = text_list(j, "inputs", limits);
  r.normalize = optional_bool(j, "normalize", true);
  r.truncate = optional_bool(j, "truncate", false);
  return r;
}

RerankRequest parse_rerank_request(std::string_view body, const Limits& limits) {
  const json j = parse_object(body);
  RerankRequest r;
  r.query = required_string(j, "query");
  check_text(r.query, "query", 0, limits);
  auto it = j.find("texts");
  if (it == j.end() || !it->is_array())
    throw ApiError(400, it == j.end() ? "texts is required" : "texts must be a list of strings", "texts");
  r.texts = text_list(j, "texts", limits);
  r.raw_scores = optional_bool(j, "raw_scores", false);
  r.return_text = optional_bool(j, "return_text", false);
  r.truncate = optional_bool(j, "truncate", false);
  return r;
}

SearchRequest parse_search_request(std::string_view body, const Limits& limits) {
  const json j = parse_object(body);
  SearchRequest r;
  r.queries = text_list(j, "query", limits);
  r.k = positive_size(j, "k", 10, 1000);
  return r;
}

std::string embeddings_response(const std::vector<std::vector<float>>& rows, bool base64, std::string_view model,
                                std::size_t prompt_tokens) {
  json data = json::array();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    json e = {{"object", "embedding"}, {"index", i}};
    if (base64) {
      // Little-endian float32, as OpenAI's API (and its Python client's decoder) expects.
      e["embedding"] = base64_encode({reinterpret_cast<const char*>(rows[i].data()), rows[i].size() * sizeof(float)});
    } else {
      e["embedding"] = float_list(rows[i]);
    }
    data.push_back(std::move(e));
  }
  return json{{"object", "list"},
              {"data", std::move(data)},
              {"model", model},
              {"usage", {{"prompt_tokens", prompt_tokens}, {"total_tokens", prompt_tokens}}}}
      .dump();
}

std::string embed_response(const std::vector<std::vector<float>>& rows) {
  json out = json::array();
  for (const auto& r : rows) out.push_back(float_list(r));
  return out.dump();
}

std::string rerank_response(const std::vector<float>& scores, const std::vector<std::string>* texts) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  json out = json::array();
  for (std::size_t i : order) {
    json r = {{"index", i}, {"score", scores[i]}};
    if (texts) r["text"] = (*texts)[i];
    out.push_back(std::move(r));
  }
  return out.dump();
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto n = (std::uint32_t(std::uint8_t(bytes[i])) << 16) | (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) |
                   std::uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(n >> s) & 63]);
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t n = std::uint32_t(std::uint8_t(bytes[i])) << 16;
    if (rest == 2) n |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}


}  // namespace rankemb::serve
