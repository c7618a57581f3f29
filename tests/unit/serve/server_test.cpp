// serve/Server end to end on loopback with a fake model (each text's vector is a pure function
// of the text, so every response can be checked against "encoding that input alone"): routes and
// shapes, errors, the API key, limits, overload, 64 concurrent clients (one and two model
// workers), drain on stop.
#include "rankemb/serve/server.h"
#include "rankemb/util/error.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace sv = rankemb::serve;
using nlohmann::json;

namespace {

constexpr std::size_t kDim = 8;

// A vector that depends only on the text (FNV-1a seeded floats).
std::vector<float> fake_vector(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  std::vector<float> v(kDim);
  for (auto& x : v) {
    h ^= h >> 29, h *= 0xbf58476d1ce4e5b9ull, h ^= h >> 32;
    x = static_cast<float>(static_cast<double>(h % 20001) / 10000.0 - 1.0);
  }
  return v;
}

std::vector<float> normalized(std::vector<float> v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(s));
  return v;
}

struct FakeModel {
  std::atomic<std::size_t> calls{0}, largest_batch{0}, in_flight{0}, most_in_flight{0};
  std::chrono::milliseconds delay{0};
  sv::EmbeddingModel model() {
    sv::EmbeddingModel m;
    m.id = "fake";
    m.dim = kDim;
    m.max_input_tokens = 12;
    m.count_tokens = [](const std::string& t) { return 2 + static_cast<std::size_t>(std::count(t.begin(), t.end(), ' ')) + !t.empty(); };
    m.embed = [this](const std::vector<std::string>& texts) {
      ++calls;
      std::size_t seen = largest_batch;
      while (texts.size() > seen && !largest_batch.compare_exchange_weak(seen, texts.size())) {
      }
      const std::size_t now = ++in_flight;
      std::size_t most = most_in_flight;
      while (now > most && !most_in_flight.compare_exchange_weak(most, now)) {
      }
      if (delay.count()) std::this_thread::sleep_for(delay);
      std::vector<std::vector<float>> rows;
      for (const auto& t : texts) rows.push_back(fake_vector(t));
      --in_flight;
      return rows;
    };
    return m;
  }
};

// /metrics once it holds every line in `want`, or after 5 s whatever it holds. A request is
// counted by httplib's logger, which runs after the response has been written, so the client can
// read /metrics before the last request's count lands.
std::string metrics_holding(httplib::Client& c, const std::vector<std::string>& want) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    const auto res = c.Get("/metrics");
    const std::string body = res ? res->body : std::string();
    const bool all = std::all_of(want.begin(), want.end(), [&](const std::string& w) { return body.find(w) != std::string::npos; });
    if (all || std::chrono::steady_clock::now() > deadline) return body;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// A server on a free loopback port, served from a background thread for the test's lifetime.
struct Running {
  sv::Server server;
  int port;
  std::thread thread;
  Running(sv::EmbeddingModel m, sv::ServerOptions o) : server(std::move(m), with_any_port(o)), port(server.bind()) {
    thread = std::thread([this] { server.run(); });
  }
  ~Running() {
    server.stop();
    thread.join();
  }
  static sv::ServerOptions with_any_port(sv::ServerOptions o) {
    o.port = 0;
    return o;
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }
};

httplib::Result post(const Running& r, const std::string& path, const std::string& body, const httplib::Headers& headers = {}) {
  auto c = r.client();
  return c.Post(path.c_str(), headers, body, "application/json");
}

}  // namespace

TEST(Server, RoutesAndShapes) {
  FakeModel fake;
  Running r(fake.model(), {});
  auto c = r.client();
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  auto info = json::parse(c.Get("/info")->body);
  EXPECT_EQ(info["model_id"], "fake");
  EXPECT_EQ(info["max_input_length"], 12);
  EXPECT_EQ(info["model_type"]["embedding"]["pooling"], "mean");

  auto res = post(r, "/v1/embeddings", R"({"input": ["a man plays", "a dog"], "model": "m"})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json j = json::parse(res->body);
  EXPECT_EQ(j["data"][0]["embedding"].get<std::vector<float>>(), fake_vector("a man plays"));
  EXPECT_EQ(j["data"][1]["embedding"].get<std::vector<float>>(), fake_vector("a dog"));
  EXPECT_EQ(j["usage"]["prompt_tokens"], 5 + 4);
  EXPECT_EQ(j["model"], "m");

  j = json::parse(post(r, "/v1/embeddings", R"({"input": "a", "dimensions": 3})")->body);
  auto v = fake_vector("a");
  v.resize(3);
  const auto want = normalized(v);
  const auto got = j["data"][0]["embedding"].get<std::vector<float>>();
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(got[i], want[i], 1e-6);

  j = json::parse(post(r, "/embed", R"({"inputs": ["x y"]})")->body);
  const auto unit = normalized(fake_vector("x y"));
  for (std::size_t i = 0; i < kDim; ++i) EXPECT_NEAR(j[0][i].get<float>(), unit[i], 1e-6);
  j = json::parse(post(r, "/embed", R"({"inputs": "x y", "normalize": false})")->body);
  EXPECT_EQ(j[0].get<std::vector<float>>(), fake_vector("x y"));

  // Rerank: cosine to the query, highest first, computed here independently.
  const std::vector<std::string> texts = {"one", "two", "three", "four"};
  j = json::parse(post(r, "/rerank", R"({"query": "q", "texts": ["one", "two", "three", "four"], "return_text": true})")->body);
  ASSERT_EQ(j.size(), 4u);
  const auto q = normalized(fake_vector("q"));
  float previous = 2;
  for (const auto& hit : j) {
    const auto t = normalized(fake_vector(texts[hit["index"].get<std::size_t>()]));
    float cos = 0;
    for (std::size_t i = 0; i < kDim; ++i) cos += q[i] * t[i];
    EXPECT_NEAR(hit["score"].get<float>(), cos, 1e-5);
    EXPECT_EQ(hit["text"], texts[hit["index"].get<std::size_t>()]);
    EXPECT_LE(hit["score"].get<float>(), previous);
    previous = hit["score"].get<float>();
  }

  const std::vector<std::string> counted = {"rankemb_requests_total{route=\"/embed\",status=\"200\"} 2",
                                             "rankemb_request_duration_seconds_bucket{route=\"/v1/embeddings\",le=\"+Inf\"} 2",
                                             "rankemb_queue_depth 0", "rankemb_http_connections{state=\"waiting\"} 0"};
  const std::string metrics = metrics_holding(c, counted);
  for (const auto& line : counted) EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics;
}

TEST(Server, ErrorsNameTheFieldAndUseTheRightStatus) {
  FakeModel fake;
  sv::ServerOptions o;
  o.max_body_bytes = 2048;
  o.limits.max_inputs = 4;
  Running r(fake.model(), o);
  auto res = post(r, "/v1/embeddings", "{not json");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"]["type"], "invalid_request_error");
  res = post(r, "/v1/embeddings", R"({"inputs": "wrong key"})");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "input");
  res = post(r, "/embed", R"({"inputs": ["a", "b", "c", "d", "e"]})");
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(json::parse(res->body)["error_type"], "Validation");
  // 13 tokens > the model's 12: 413 unless the request asks to truncate.
  const std::string long_text = R"("a b c d e f g h i j k")";
  EXPECT_EQ(post(r, "/embed", R"({"inputs": )" + long_text + "}")->status, 413);
  EXPECT_EQ(post(r, "/embed", R"({"inputs": )" + long_text + R"(, "truncate": true})")->status, 200);
  EXPECT_EQ(post(r, "/v1/embeddings", R"({"input": )" + long_text + "}")->status, 413);
  res = post(r, "/embed", std::string(R"({"inputs": ")") + std::string(4000, 'a') + "\"}");
  EXPECT_EQ(res->status, 413);
  EXPECT_FALSE(json::parse(res->body)["error"].get<std::string>().empty());
  EXPECT_EQ(post(r, "/v1/embeddings", R"({"input": "a", "dimensions": 9})")->status, 400);
  EXPECT_EQ(post(r, "/search", R"({"query": "a"})")->status, 404);  // no index loaded
  auto c = r.client();
  EXPECT_EQ(c.Get("/nowhere")->status, 404);
}

TEST(Server, ApiKey) {
  FakeModel fake;
  sv::ServerOptions o;
  o.api_key = "s3cret";
  Running r(fake.model(), o);
  EXPECT_EQ(post(r, "/embed", R"({"inputs": "a"})")->status, 401);
  auto res = post(r, "/v1/embeddings", R"({"input": "a"})", {{"Authorization", "Bearer wrong"}});
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(json::parse(res->body)["error"]["type"], "authentication_error");
  EXPECT_EQ(post(r, "/v1/embeddings", R"({"input": "a"})", {{"Authorization", "Bearer s3cret"}})->status, 200);
  auto c = r.client();
  EXPECT_EQ(c.Get("/health")->status, 200);  // health checks need no key
  EXPECT_EQ(c.Get("/metrics")->status, 401);
}

TEST(Server, OverloadIsRefusedWithRetryAfter) {
  FakeModel fake;
  fake.delay = std::chrono::milliseconds(300);
  sv::ServerOptions o;
  o.batching.max_queue_texts = 2;
  o.batching.max_batch_tokens = 3;  // one text per model call
  Running r(fake.model(), o);
  std::vector<std::thread> clients;
  std::atomic<int> ok{0}, refused{0}, other{0};
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      auto res = post(r, "/embed", json{{"inputs", "t" + std::to_string(i)}}.dump());
      if (res && res->status == 200) ++ok;
      else if (res && res->status == 429 && res->get_header_value("Retry-After") == "1") ++refused;
      else ++other;
    });
  for (auto& t : clients) t.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(refused.load(), 0);
  EXPECT_EQ(other.load(), 0);
}

// 64 clients, 4 requests each, against `workers` model workers.
void concurrent_clients(std::size_t workers) {
  FakeModel fake;
  fake.delay = std::chrono::milliseconds(20);  // well over max_wait: two workers' calls overlap
  sv::ServerOptions o;
  o.batching.max_wait = std::chrono::milliseconds(5);
  o.batching.workers = workers;
  Running r(fake.model(), o);
  constexpr int kClients = 64, kRequests = 4;
  std::atomic<int> wrong{0}, failed{0};
  std::string first_failure;
  std::vector<std::thread> clients;
  const auto start = std::chrono::steady_clock::now();
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      auto client = r.client();
      for (int k = 0; k < kRequests; ++k) {
        const std::vector<std::string> texts = {fmt::format("client {} request {} a", c, k), fmt::format("client {} b {}", c, k)};
        auto res = client.Post("/v1/embeddings", json{{"input", texts}}.dump(), "application/json");
        if (!res || res->status != 200) {
          if (++failed == 1) first_failure = fmt::format("request {}: ", k) + (res ? fmt::format("HTTP {}: {}", res->status, res->body) : httplib::to_string(res.error()));
          continue;
        }
        const json j = json::parse(res->body);
        for (std::size_t i = 0; i < texts.size(); ++i)
          if (j["data"][i]["index"] != i || j["data"][i]["embedding"].get<std::vector<float>>() != fake_vector(texts[i])) ++wrong;
      }
    });
  for (auto& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(failed.load(), 0) << "first: " << first_failure;
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LT(seconds, 60.0);
  // Requests from different clients shared model calls.
  EXPECT_GT(fake.largest_batch.load(), 2u);
  EXPECT_LT(fake.calls.load(), static_cast<std::size_t>(kClients * kRequests));
  // Every worker computed, never more at once than there are workers.
  EXPECT_EQ(fake.most_in_flight.load(), workers);
}

TEST(Server, ConcurrentClientsGetTheirOwnAnswers) { concurrent_clients(1); }

TEST(Server, ConcurrentClientsGetTheirOwnAnswersFromTwoWorkers) { concurrent_clients(2); }

// Idle connections beyond the pool (http_threads serving + as many accepted and waiting, + the one
// the accept loop holds while it waits for room) stay in the kernel's listen backlog: the server
// does not hold a socket for each. When they close, requests are served again.
TEST(Server, ConnectionsBeyondThePoolWaitInTheKernel) {
  FakeModel fake;
  sv::ServerOptions o;
  o.http_threads = 2;
  Running r(fake.model(), o);
  const auto open_fds = [] {
    return static_cast<long>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator()));
  };
  const long before = open_fds();
  constexpr int kIdle = 16;
  std::vector<int> idle;
  for (int i = 0; i < kIdle; ++i) {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(s, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(r.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << "the backlog holds them";
    idle.push_back(s);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const long accepted = open_fds() - before - kIdle;
  EXPECT_GE(accepted, 2) << "the two threads take a connection each";
  EXPECT_LE(accepted, 2 + 2 + 1) << "the server accepted idle connections beyond its pool";
  for (int s : idle) ::close(s);
  auto res = r.client().Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

// httplib's default socket options set SO_REUSEPORT, with which a second server would bind the
// taken port and silently take half of the traffic.
TEST(Server, RefusesATakenPort) {
  FakeModel fake;
  Running first(fake.model(), {});
  sv::ServerOptions o;
  o.port = first.port;
  sv::Server second(fake.model(), o);
  try {
    second.bind();
    FAIL() << "a second server bound port " << first.port;
  } catch (const rankemb::Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(first.port)), std::string::npos) << e.what();
  }
}

// A stop() before run() (a signal during start-up) must still make run() return, not serve forever.
TEST(Server, StopBeforeRunReturns) {
  FakeModel fake;
  sv::Server server(fake.model(), Running::with_any_port({}));
  server.bind();
  server.stop();
  server.run();  // hangs (ctest's timeout) if stop() was lost
  SUCCEED();
}

TEST(Server, StopDrainsRequestsInFlight) {
  FakeModel fake;
  fake.delay = std::chrono::milliseconds(400);
  auto server = std::make_unique<sv::Server>(fake.model(), Running::with_any_port({}));
  const int port = server->bind();
  std::thread serving([&] { server->run(); });
  int status = 0;
  std::thread client([&] {
    httplib::Client c("127.0.0.1", port);
    auto res = c.Post("/embed", R"({"inputs": "slow"})", "application/json");
    status = res ? res->status : -1;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  server->stop();
  serving.join();  // run() returns only after the request in flight was answered
  client.join();
  EXPECT_EQ(status, 200);
}

namespace {

// A text model whose answers are pure functions of the request, so each response can be checked
// field by field; `delay` makes every generation slow.
struct FakeLlm {
  std::chrono::milliseconds delay{0};
  std::atomic<int> running{0}, most_at_once{0};
  static std::size_t count(const std::string& prompt) {
    return 1 + static_cast<std::size_t>(std::count(prompt.begin(), prompt.end(), ' ')) + !prompt.empty();
  }
  static std::string answer(const sv::CompletionRequest& r, const std::string& prompt) {
    return fmt::format("{}|neg={}|g={}|max={}|t={}|seed={}|chat={}", prompt, r.negative_prompt, r.guidance_scale, r.max_tokens,
                       r.temperature, r.seed, r.chat);
  }
  void busy() {
    const int now = ++running;
    int seen = most_at_once;
    while (now > seen && !most_at_once.compare_exchange_weak(seen, now)) {
    }
    if (delay.count()) std::this_thread::sleep_for(delay);
    --running;
  }
  sv::TextModel model() {
    sv::TextModel m;
    m.id = "fake-llm";
    m.preset = "paper";
    m.context_tokens = 20;
    m.count_prompt_tokens = [](const std::string& p, bool chat) { return count(p) + (chat ? 3 : 0); };
    m.complete = [this](const sv::CompletionRequest& r) {
      busy();
      std::vector<sv::CompletionChoice> out;
      for (const auto& p : r.prompts) out.push_back({answer(r, p), r.max_tokens == 3, count(p), r.max_tokens});
      return out;
    };
    m.chain = [this](const sv::ChainRequest& r) {
      busy();
      return json{{"seed", r.seed}, {"steps", r.steps}, {"id", r.id}, {"g", r.guidance_scale.value_or(-1)}}.dump();
    };
    return m;
  }
};

}  // namespace

TEST(Server, GenerationRoutesWithoutAnLlmAre404InOpenAisShape) {
  FakeModel fake;
  Running r(fake.model(), {});
  for (const char* path : {"/v1/completions", "/v1/chains"}) {
    auto res = post(r, path, R"({"prompt": "a", "seed": "a", "steps": 1})");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404);
    const json j = json::parse(res->body);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error") << res->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find("--llm"), std::string::npos) << res->body;
  }
  EXPECT_TRUE(json::parse(r.client().Get("/info")->body)["llm"].is_null());
}

// The server with an LLM: answers come back from the worker unchanged and in the OpenAI shape,
// limits are checked against the model's context, /info and /metrics report the LLM.
TEST(Server, CompletionsAndChainsGoThroughTheLlm) {
  FakeModel fake;
  FakeLlm llm;
  sv::ServerOptions o;
  o.port = 0;
  sv::Server server(fake.model(), o, nullptr, llm.model());
  const int port = server.bind();
  std::thread serving([&] { server.run(); });
  httplib::Client c("127.0.0.1", port);
  const auto send = [&](const char* path, const std::string& body) { return c.Post(path, body, "application/json"); };

  auto res = send("/v1/completions", R"({"prompt": ["one two", "three"], "max_tokens": 3, "temperature": 0, "seed": 4,
      "negative_prompt": "no", "guidance_scale": 2, "model": "asked"})");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json j = json::parse(res->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "asked");
  EXPECT_EQ(j["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  ASSERT_EQ(j["choices"].size(), 2u);
  sv::CompletionRequest want;
  want.negative_prompt = "no", want.guidance_scale = 2, want.max_tokens = 3, want.temperature = 0, want.seed = 4;
  EXPECT_EQ(j["choices"][0]["text"], FakeLlm::answer(want, "one two"));
  EXPECT_EQ(j["choices"][1]["text"], FakeLlm::answer(want, "three"));
  EXPECT_EQ(j["choices"][1]["index"], 1);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 3 + 2);
  EXPECT_EQ(j["usage"]["completion_tokens"], 6);
  EXPECT_EQ(j["usage"]["total_tokens"], 11);
  EXPECT_EQ(json::parse(send("/v1/completions", R"({"prompt": "x"})")->body)["model"], "fake-llm");

  res = send("/v1/chains", R"({"seed": "A dog runs.", "steps": 4, "id": 9, "guidance_scale": 1.5})");
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(json::parse(res->body), (json{{"seed", "A dog runs."}, {"steps", 4}, {"id", 9}, {"g", 1.5}}));

  // Context 20 tokens: prompt (count) + max_tokens must fit; the field at fault is named.
  res = send("/v1/completions", R"({"prompt": ["ok", "a b c d e f g h i j"], "max_tokens": 10})");
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "prompt");
  EXPECT_NE(res->body.find("prompt[1] has 11 tokens"), std::string::npos) << res->body;
  res = send("/v1/completions", R"({"prompt": "ok", "negative_prompt": "a b c d e f g h i j", "guidance_scale": 2, "max_tokens": 10})");
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "negative_prompt");
  res = send("/v1/completions", R"({"prompt": "ok", "max_tokens": 20})");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "max_tokens");
  res = send("/v1/completions", R"({"prompt": "ok", "chat": true})");
  EXPECT_EQ(res->status, 400) << "the fake has no chat template";
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "chat");
  res = send("/v1/chains", R"({"seed": "x", "steps": 65})");
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "steps");

  const json info = json::parse(c.Get("/info")->body);
  EXPECT_EQ(info["llm"]["model_id"], "fake-llm");
  EXPECT_EQ(info["llm"]["context_tokens"], 20);
  EXPECT_EQ(info["llm"]["chain_preset"], "paper");
  // completion tokens: 6 + 16 (the default max_tokens)
  const std::vector<std::string> counted = {"rankemb_requests_total{route=\"/v1/completions\",status=\"200\"} 2",
                                             "rankemb_requests_total{route=\"/v1/completions\",status=\"413\"} 2",
                                             "rankemb_requests_total{route=\"/v1/completions\",status=\"400\"} 2",
                                             "rankemb_requests_total{route=\"/v1/chains\",status=\"200\"} 1",
                                             "rankemb_completion_tokens_total 22", "rankemb_llm_queue_depth 0"};
  const std::string metrics = metrics_holding(c, counted);
  for (const auto& line : counted) EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics;
  server.stop();
  serving.join();
}

TEST(Server, GenerationRunsOneAtATimeAndAFullQueueIs429) {
  FakeModel fake;
  FakeLlm llm;
  llm.delay = std::chrono::milliseconds(300);
  sv::ServerOptions o;
  o.port = 0;
  o.llm_queue = 1;  // one running + one waiting
  sv::Server server(fake.model(), o, nullptr, llm.model());
  const int port = server.bind();
  std::thread serving([&] { server.run(); });
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i)
    clients.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(30, 0);
      auto res = i % 2 ? c.Post("/v1/chains", json{{"seed", "s"}, {"steps", 1}}.dump(), "application/json")
                       : c.Post("/v1/completions", json{{"prompt", "p"}}.dump(), "application/json");
      if (res && res->status == 200) ++ok;
      else if (res && res->status == 429 && res->get_header_value("Retry-After") == "1" &&
               json::parse(res->body)["error"]["type"] == "rate_limit_error") ++refused;
      else ++other;
    });
  for (auto& t : clients) t.join();
  EXPECT_GE(ok.load(), 2);
  EXPECT_GT(refused.load(), 0);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(llm.most_at_once.load(), 1) << "the LLM must never run two requests at once";
  server.stop();
  serving.join();
}

TEST(Server, StopFinishesQueuedGeneration) {
  FakeModel fake;
  FakeLlm llm;
  llm.delay = std::chrono::milliseconds(500);
  sv::ServerOptions o;
  o.port = 0;
  auto server = std::make_unique<sv::Server>(fake.model(), o, nullptr, llm.model());
  const int port = server->bind();
  std::thread serving([&] { server->run(); });
  std::vector<int> status(3, 0);
  std::vector<std::thread> clients;
  for (int i = 0; i < 3; ++i)
    clients.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(30, 0);
      auto res = c.Post("/v1/completions", json{{"prompt", fmt::format("p{}", i)}}.dump(), "application/json");
      status[i] = res ? res->status : -1;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // one running, two queued
  server->stop();
  serving.join();  // returns once the running and the queued generations are answered
  for (auto& t : clients) t.join();
  EXPECT_EQ(status, (std::vector<int>{200, 200, 200}));
}
