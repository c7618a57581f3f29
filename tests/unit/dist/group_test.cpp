// The c10d Gloo group (src/rankemb/dist/group.h) with two ranks as two threads of this process
// on loopback: each collective against the value worked out by hand, the gradient all-reduce
// with parameters that have no gradient on one rank or on any, and the failures a job must not
// hang on (no peer to join, a peer gone mid-job) within bounded time.
#include "rankemb/dist/group.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "rankemb/dist/launch.h"
#include "rankemb/util/error.h"

namespace {

namespace rd = rankemb::dist;

rd::LaunchEnv env_of(int rank, int world, int port) {
  rd::LaunchEnv e;
  e.rank = rank;
  e.world_size = world;
  e.master_addr = "127.0.0.1";
  e.master_port = static_cast<std::uint16_t>(port);
  return e;
}

// Runs body(group) on `world` ranks, one thread each, and returns what each rank returned.
template <typename T>
std::vector<T> on_ranks(int world, const std::function<T(rd::Group&)>& body, int timeout_s = 20) {
  const int port = rd::free_loopback_port();
  std::vector<std::future<T>> futures;
  for (int r = 0; r < world; ++r) {
    futures.push_back(std::async(std::launch::async, [=] {
      rd::Group g(env_of(r, world, port), std::chrono::seconds(timeout_s));
      return body(g);
    }));
  }
  std::vector<T> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

TEST(Group, ScalarCollectives) {
  auto got = on_ranks<std::vector<double>>(2, [](rd::Group& g) {
    std::vector<double> v;
    v.push_back(g.sum(g.rank() == 0 ? 1.25 : -4.0));
    v.push_back(g.broadcast(g.rank() == 0 ? 7.5 : 99.0));
    v.push_back(g.broadcast(g.rank() == 1 ? 3.0 : 0.0, /*root=*/1));
    g.barrier();
    v.push_back(g.size());
    return v;
  });
  for (const auto& v : got) EXPECT_EQ(v, (std::vector<double>{-2.75, 7.5, 3.0, 2.0}));
}

TEST(Group, AllgatherInRankOrder) {
  auto got = on_ranks<std::vector<std::vector<std::uint8_t>>>(2, [](rd::Group& g) {
    torch::Tensor blob = torch::tensor({10 + g.rank(), 20 + g.rank(), 30}, torch::kUInt8);
    std::vector<std::vector<std::uint8_t>> rows;
    for (const auto& t : g.allgather(blob)) rows.emplace_back(t.data_ptr<std::uint8_t>(), t.data_ptr<std::uint8_t>() + t.numel());
    return rows;
  });
  const std::vector<std::vector<std::uint8_t>> want{{10, 20, 30}, {11, 21, 30}};
  EXPECT_EQ(got[0], want);
  EXPECT_EQ(got[1], want);
}

// Rank 0 has gradients for a and b, rank 1 only for a; c has none anywhere. After the reduction:
// a = sum, b = rank 0's (rank 1 counts zeros), c still without a gradient on both ranks.
TEST(Group, GradientAllReduce) {
  struct Out {
    std::vector<float> a, b;
    bool c_defined = true;
    std::uint64_t bytes = 0;
  };
  auto got = on_ranks<Out>(2, [](rd::Group& g) {
    auto a = torch::zeros({2, 2}, torch::requires_grad());
    auto b = torch::zeros({3}, torch::requires_grad());
    auto c = torch::zeros({1}, torch::requires_grad());
    const float w = g.rank() == 0 ? 1.0f : 10.0f;
    torch::Tensor loss = (a * torch::tensor({{1.0f, 2.0f}, {3.0f, 4.0f}})).sum() * w;
    if (g.rank() == 0) loss = loss + (b * torch::tensor({0.5f, -1.0f, 2.0f})).sum();
    loss.backward();
    Out o;
    o.bytes = g.allreduce_gradients({a, b, c});
    o.a.assign(a.grad().data_ptr<float>(), a.grad().data_ptr<float>() + 4);
    o.b.assign(b.grad().data_ptr<float>(), b.grad().data_ptr<float>() + 3);
    o.c_defined = c.grad().defined();
    return o;
  });
  for (const auto& o : got) {
    EXPECT_EQ(o.a, (std::vector<float>{11, 22, 33, 44}));
    EXPECT_EQ(o.b, (std::vector<float>{0.5f, -1.0f, 2.0f}));
    EXPECT_FALSE(o.c_defined);
    EXPECT_EQ(o.bytes, 7u * sizeof(float));
  }
}

TEST(Group, DifferentModelsAreRefused) {
  auto got = on_ranks<std::string>(2, [](rd::Group& g) {
    std::vector<torch::Tensor> params;
    for (int i = 0; i <= g.rank(); ++i) params.push_back(torch::zeros({1}, torch::requires_grad()));
    try {
      g.allreduce_gradients(params);
      return std::string("no error");
    } catch (const rankemb::Error& e) {
      return std::string(e.what());
    }
  });
  // Rank 1 (2 parameters against rank 0's 1) names the cause; rank 0 fails when rank 1 leaves.
  EXPECT_NE(got[1].find("different parameter counts (2 here, 1 on rank 0)"), std::string::npos) << got[1];
  EXPECT_NE(got[0], "no error");
}

// A rank whose peers never come fails within the timeout, naming the address.
TEST(Group, JoinTimesOut) {
  const int port = rd::free_loopback_port();
  const auto t0 = std::chrono::steady_clock::now();
  try {
    rd::Group g(env_of(0, 2, port), std::chrono::seconds(2));
    ADD_FAILURE() << "joined a group whose other rank never started";
  } catch (const rankemb::Error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
}

// A peer that leaves mid-job: the rank still waiting fails well before the (long) timeout.
TEST(Group, PeerGoneFailsFast) {
  const int port = rd::free_loopback_port();
  const auto t0 = std::chrono::steady_clock::now();
  auto leaver = std::async(std::launch::async, [=] {
    rd::Group g(env_of(1, 2, port), std::chrono::seconds(120));
    g.barrier();
  });  // the group is destroyed here: its connections close
  std::string error;
  try {
    rd::Group g(env_of(0, 2, port), std::chrono::seconds(120));
    g.barrier();
    leaver.get();
    g.sum(1.0);  // rank 1 is gone
  } catch (const rankemb::Error& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("rank 0 of 2"), std::string::npos) << error;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(60));
}

}  // namespace
