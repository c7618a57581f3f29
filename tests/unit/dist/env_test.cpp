// The launch environment (src/rankemb/dist/env.h): torchrun's variables read and checked, each
// bad value refused naming its variable; per-rank output paths.
#include "rankemb/dist/env.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "common/expect_error.h"
#include "rankemb/util/error.h"

namespace {

namespace rd = rankemb::dist;
using rankemb::ErrorCode;

std::optional<rd::LaunchEnv> from(const std::map<std::string, std::string>& vars) {
  return rd::launch_env_from([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(LaunchEnv, AbsentMeansOneProcess) { EXPECT_FALSE(from({}).has_value()); }

TEST(LaunchEnv, ReadsTorchrunContract) {
  auto env = from({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"},
                   {"MASTER_PORT", "29511"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                   {"TORCHELASTIC_RESTART_COUNT", "2"}});
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->rank, 3);
  EXPECT_EQ(env->world_size, 8);
  EXPECT_EQ(env->local_rank, 1);
  EXPECT_EQ(env->master_addr, "node7");
  EXPECT_EQ(env->master_port, 29511);
  EXPECT_TRUE(env->agent_store);
  EXPECT_EQ(env->restart_count, 2);
}

TEST(LaunchEnv, DefaultsLocalRankAndPort) {
  auto env = from({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}});
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->local_rank, 1);
  EXPECT_EQ(env->master_port, 29500);
  EXPECT_FALSE(env->agent_store);
}

TEST(LaunchEnv, RefusesBadValuesNamingTheVariable) {
  using V = std::map<std::string, std::string>;
  const V ok{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}};
  auto with = [&](const std::string& k, const std::string& v) {
    V vars = ok;
    vars[k] = v;
    return vars;
  };
  rankemb::test::expect_error([&] { from({{"RANK", "0"}}); }, ErrorCode::Usage, "WORLD_SIZE");
  rankemb::test::expect_error([&] { from({{"WORLD_SIZE", "2"}}); }, ErrorCode::Usage, "RANK");
  rankemb::test::expect_error([&] { from(with("RANK", "2")); }, ErrorCode::Usage, "RANK=2 must be below WORLD_SIZE=2");
  rankemb::test::expect_error([&] { from(with("RANK", "1x")); }, ErrorCode::Usage, "RANK=\"1x\"");
  rankemb::test::expect_error([&] { from(with("WORLD_SIZE", "0")); }, ErrorCode::Usage, "WORLD_SIZE=0 is outside");
  rankemb::test::expect_error([&] { from(with("MASTER_PORT", "70000")); }, ErrorCode::Usage, "MASTER_PORT=70000");
  rankemb::test::expect_error([&] { from(with("LOCAL_RANK", "-1")); }, ErrorCode::Usage, "LOCAL_RANK=-1");
  rankemb::test::expect_error([&] { from({{"RANK", "0"}, {"WORLD_SIZE", "2"}}); }, ErrorCode::Usage, "MASTER_ADDR");
  // One rank needs no address.
  EXPECT_TRUE(from({{"RANK", "0"}, {"WORLD_SIZE", "1"}}).has_value());
}

TEST(RankOutputPath, InsertsTheRank) {
  EXPECT_EQ(rd::rank_output_path("chains.jsonl", 3), "chains.3.jsonl");
  EXPECT_EQ(rd::rank_output_path("out/run.v2/chains.jsonl", 0), "out/run.v2/chains.0.jsonl");
  EXPECT_EQ(rd::rank_output_path("out/run.v2/chains", 1), "out/run.v2/chains.1");
  EXPECT_EQ(rd::rank_output_path(".hidden", 1), ".hidden.1");
  EXPECT_EQ(rd::rank_output_path("shard-{rank}-of-4.jsonl", 2), "shard-2-of-4.jsonl");
}

}  // namespace
