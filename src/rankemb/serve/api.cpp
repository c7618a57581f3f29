#include "rankemb/serve/api.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>
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

// A number in [lo, hi] (finite), or `fallback` when absent or null.
double optional_number(const json& j, const char* key, double fallback, double lo, double hi) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) throw ApiError(400, fmt::format("{} must be a number, got {}", key, it->type_name()), key);
  const double v = it->get<double>();
  if (!(v >= lo && v <= hi))
    throw ApiError(400, fmt::format("{} must be between {} and {}, got {}", key, lo, hi, it->dump()), key);
  return v;
}

// A non-negative integer (up to 2^64 - 1), or `fallback` when absent or null.
std::uint64_t optional_count(const json& j, const char* key, std::uint64_t fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number_unsigned())
    throw ApiError(400, fmt::format("{} must be a non-negative integer, got {}", key, it->dump()), key);
  return it->get<std::uint64_t>();
}

// One string within the limits (413 when longer than `max_bytes`, 400 for invalid UTF-8).
std::string bounded_string(const json& j, const char* key, std::size_t max_bytes) {
  std::string s = required_string(j, key);
  if (s.size() > max_bytes)
    throw ApiError(413, fmt::format("{} has {} bytes, more than the {} allowed", key, s.size(), max_bytes), key);
  if (auto bad = unicode::find_invalid_utf8(s))
    throw ApiError(400, fmt::format("{} is not valid UTF-8 (byte {})", key, *bad), key);
  return s;
}

// OpenAI's stop: a string or a list of at most kMaxStopStrings non-empty strings.
std::vector<std::string> stop_strings(const json& j, std::size_t max_bytes) {
  auto it = j.find("stop");
  if (it == j.end() || it->is_null()) return {};
  const Limits limits{.max_inputs = kMaxStopStrings, .max_input_bytes = max_bytes};
  std::vector<std::string> out = text_list(j, "stop", limits);
  for (const auto& s : out)
    if (s.empty()) throw ApiError(400, "stop strings must not be empty", "stop");
  return out;
}

// The OpenAI completion options rankemb does not implement, each with the value that means "off".
void refuse_unsupported(const json& j) {
  const auto neutral = [&](const char* key, const json& off) {
    auto it = j.find(key);
    if (it != j.end() && !it->is_null() && *it != off)
      throw ApiError(400, fmt::format("{} is not supported by this server (only {} is)", key, off.dump()), key);
  };
  neutral("n", 1);
  neutral("best_of", 1);
  neutral("stream", false);
  neutral("echo", false);
  neutral("logprobs", nullptr);
  neutral("suffix", nullptr);
  neutral("presence_penalty", 0);
  neutral("frequency_penalty", 0);
  neutral("logit_bias", json::object());
}

// /v1/chains is rankemb's own route: a misspelt option must not be ignored silently.
void refuse_unknown_keys(const json& j, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : j.items())
    if (std::find(known.begin(), known.end(), key) == known.end())
      throw ApiError(400, fmt::format("unknown field {}; expected one of {}", json(key).dump(), fmt::join(known, ", ")), key);
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

CompletionRequest parse_completion_request(std::string_view body, const LlmLimits& limits) {
  const json j = parse_object(body);
  refuse_unsupported(j);
  CompletionRequest r;
  r.prompts = text_list(j, "prompt", Limits{.max_inputs = limits.max_prompts, .max_input_bytes = limits.max_prompt_bytes});
  if (auto it = j.find("model"); it != j.end() && it->is_string()) r.model = it->get<std::string>();
  r.max_tokens = positive_size(j, "max_tokens", r.max_tokens, limits.max_tokens);
  r.temperature = optional_number(j, "temperature", r.temperature, 0, 2);
  r.top_p = optional_number(j, "top_p", r.top_p, 0, 1);
  if (r.top_p == 0) throw ApiError(400, "top_p must be more than 0 (it keeps at least one token)", "top_p");
  r.seed = optional_count(j, "seed", r.seed);
  r.stop = stop_strings(j, limits.max_prompt_bytes);
  if (j.contains("negative_prompt") && !j["negative_prompt"].is_null())
    r.negative_prompt = bounded_string(j, "negative_prompt", limits.max_prompt_bytes);
  r.guidance_scale = optional_number(j, "guidance_scale", r.guidance_scale, 0, 100);
  if (r.guidance_scale != 1.0 && r.negative_prompt.empty())
    throw ApiError(400, "guidance_scale other than 1 needs a negative_prompt to steer away from", "negative_prompt");
  r.chat = optional_bool(j, "chat", false);
  return r;
}

ChainRequest parse_chain_request(std::string_view body, const LlmLimits& limits) {
  const json j = parse_object(body);
  refuse_unknown_keys(
      j, {"seed", "steps", "id", "guidance_scale", "max_tokens", "temperature", "top_p", "random_seed", "model"});
  ChainRequest r;
  auto seed = j.find("seed");
  if (seed != j.end() && seed->is_number())
    throw ApiError(400, "seed must be the seed sentence (a string); the random seed is random_seed", "seed");
  r.seed = bounded_string(j, "seed", limits.max_prompt_bytes);
  if (r.seed.find_first_of("\r\n") != std::string::npos)
    throw ApiError(400, "seed must be one sentence on one line (it has a line break)", "seed");
  if (r.seed.empty()) throw ApiError(400, "seed must not be empty", "seed");
  if (!j.contains("steps") || j["steps"].is_null())
    throw ApiError(400, fmt::format("steps is required (at most {})", limits.max_steps), "steps");
  r.steps = positive_size(j, "steps", 1, limits.max_steps);
  r.id = optional_count(j, "id", r.id);
  if (j.contains("guidance_scale") && !j["guidance_scale"].is_null())
    r.guidance_scale = optional_number(j, "guidance_scale", 1, 0, 100);
  if (j.contains("max_tokens") && !j["max_tokens"].is_null())
    r.max_tokens = positive_size(j, "max_tokens", 1, limits.max_tokens);
  r.temperature = optional_number(j, "temperature", r.temperature, 0, 2);
  r.top_p = optional_number(j, "top_p", r.top_p, 0, 1);
  if (r.top_p == 0) throw ApiError(400, "top_p must be more than 0 (it keeps at least one token)", "top_p");
  r.random_seed = optional_count(j, "random_seed", r.random_seed);
  return r;
}

std::string completions_response(const std::vector<CompletionChoice>& choices, std::string_view id, std::int64_t created,
                                 std::string_view model) {
  json list = json::array();
  std::size_t prompt_tokens = 0, completion_tokens = 0;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    const CompletionChoice& c = choices[i];
    list.push_back({{"index", i}, {"text", c.text}, {"finish_reason", c.length ? "length" : "stop"}, {"logprobs", nullptr}});
    prompt_tokens += c.prompt_tokens;
    completion_tokens += c.completion_tokens;
  }
  return json{{"id", id},
              {"object", "text_completion"},
              {"created", created},
              {"model", model},
              {"choices", std::move(list)},
              {"usage",
               {{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion_tokens},
                {"total_tokens", prompt_tokens + completion_tokens}}}}
      // `replace`: a completion cut off by max_tokens may end inside a UTF-8 sequence.
      .dump(-1, ' ', false, json::error_handler_t::replace);
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
