// Data-parallel `rankemb train` end to end, as users start it: the real binary with --nproc 2
// (two Gloo ranks on loopback) against one process with the same global batch, on a dropout-free
// copy of all-MiniLM-L6-v2 (dropout draws are per rank, so only a dropout-free model can match
// one process weight for weight). Also: a killed launcher resumes to the same weights, a killed
// rank fails the job quickly with a message naming the surviving rank, and the ranks refuse a
// batch smaller than the world.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "common/test_paths.h"
#include "rankemb/dist/launch.h"
#include "rankemb/io/file.h"
#include "rankemb/models/safetensors_torch.h"

namespace {

namespace fs = std::filesystem;
using rankemb::test::TempDir;
using Clock = std::chrono::steady_clock;

// all-MiniLM-L6-v2 with dropout 0: every file linked, config.json rewritten.
fs::path dropout_free_minilm(const TempDir& tmp) {
  const fs::path src = rankemb::test::asset("all-MiniLM-L6-v2");
  const fs::path dst = tmp / "minilm-nodropout";
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(src))
    if (e.path().filename() != "config.json") fs::create_symlink(e.path(), dst / e.path().filename());
  auto config = nlohmann::json::parse(rankemb::io::read_file(src / "config.json"));
  config["hidden_dropout_prob"] = 0.0;
  config["attention_probs_dropout_prob"] = 0.0;
  std::ofstream(dst / "config.json") << config.dump(2);
  return dst;
}

// The six fixture chains and a seventh (a copy of the first under another id): with batch 3 every
// epoch ends with a one-chain step, where rank 1 of 2 has no chain and sends zero gradients.
fs::path seven_chains(const TempDir& tmp) {
  std::string text = rankemb::io::read_file(rankemb::test::fixtures_dir() / "train" / "tiny_chains.jsonl");
  if (!text.empty() && text.back() != '\n') text += '\n';
  std::string first = text.substr(0, text.find('\n'));
  auto j = nlohmann::json::parse(first);
  j["id"] = "t6";
  return tmp.write("chains7.jsonl", text + j.dump() + "\n");
}

std::vector<std::string> train_args(const fs::path& student, const fs::path& chains, const fs::path& out) {
  return {"-q", "train", "--student", student.string(),
          "--chains", chains.string(),
          "--data-dir", (rankemb::test::fixtures_dir() / "eval" / "data").string(),
          "-o", out.string(), "--batch", "3", "--max-steps", "20", "--eval-steps", "5",
          "--lr", "1e-5", "--seed", "7"};
}

// Starts the CLI with `args`, extra environment variables and stderr into `err`.
pid_t spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env, const fs::path& err) {
  std::vector<std::string> all{RANKEMB_CLI_PATH};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) ::dup2(fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_status(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int run(const std::vector<std::string>& args, const fs::path& err) { return wait_status(spawn(args, {}, err)); }

std::string slurp(const fs::path& p) { return fs::exists(p) ? rankemb::io::read_file(p) : std::string(); }

std::vector<nlohmann::json> records(const fs::path& run, const std::string& type) {
  std::vector<nlohmann::json> out;
  std::istringstream in(slurp(run / "metrics.jsonl"));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("type", "") == type) out.push_back(j);
  }
  return out;
}

// Largest absolute difference between the tensors of two safetensors files; `same_names`: both
// hold the same tensors (else only the names `a` and `b` share are compared).
double max_diff(const fs::path& a, const fs::path& b, bool same_names = true) {
  auto ta = rankemb::models::load_safetensors(a, {.copy = true});
  auto tb = rankemb::models::load_safetensors(b, {.copy = true});
  if (same_names) EXPECT_EQ(ta.size(), tb.size());
  double worst = 0;
  for (const auto& [name, t] : ta) {
    auto it = tb.find(name);
    if (it == tb.end()) {
      if (same_names) ADD_FAILURE() << name << " missing from " << b;
      continue;
    }
    worst = std::max(worst, (t.to(torch::kDouble) - it->second.to(torch::kDouble)).abs().max().item<double>());
  }
  return worst;
}

// Waits until `run` has logged at least `steps` steps; false when `pid` ended first or time ran out.
bool wait_for_steps(const fs::path& run, std::size_t steps, pid_t pid) {
  const auto deadline = Clock::now() + std::chrono::seconds(300);
  while (Clock::now() < deadline) {
    if (records(run, "step").size() >= steps) return true;
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Each test runs in its own process (gtest_discover_tests): it makes the runs it compares.
struct Runs {
  TempDir tmp{"dist"};
  fs::path student = dropout_free_minilm(tmp);
  fs::path chains = seven_chains(tmp);
  std::vector<std::string> args(const std::string& name, std::vector<std::string> extra = {}) const {
    auto a = train_args(student, chains, tmp / name);
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  fs::path err(const std::string& name) const { return tmp / (name + ".err"); }
};

// The equivalence the issue asks for: 2 ranks x global batch 3 (shares of 2 and 1 chains, and 1
// and 0 at the end of each epoch) end within 1e-5 of one process with batch 3, after 20 steps; the
// logged losses and dev scores agree.
TEST(DataParallel, TwoRanksEqualOneProcess) {
  Runs r;
  ASSERT_EQ(run(r.args("one"), r.err("one")), 0) << slurp(r.err("one"));
  ASSERT_EQ(run(r.args("two", {"--nproc", "2"}), r.err("two")), 0) << slurp(r.err("two"));
  const fs::path one = r.tmp / "one", two = r.tmp / "two";
  const double final_diff = max_diff(one / "checkpoint" / "model.safetensors", two / "checkpoint" / "model.safetensors");
  std::printf("max |w_2ranks - w_1process| after 20 steps: %.3g\n", final_diff);
  EXPECT_LE(final_diff, 1e-5);
  EXPECT_LE(max_diff(one / "best" / "model.safetensors", two / "best" / "model.safetensors"), 1e-5);
  // The weights moved: a comparison of untrained copies would pass trivially.
  EXPECT_GT(max_diff(one / "checkpoint" / "model.safetensors", r.student / "model.safetensors", false), 5e-5);
  auto s1 = records(one, "step"), s2 = records(two, "step");
  ASSERT_EQ(s1.size(), 20u);
  ASSERT_EQ(s2.size(), 20u);
  for (std::size_t i = 0; i < s1.size(); ++i) {
    EXPECT_NEAR(s1[i]["loss"].get<double>(), s2[i]["loss"].get<double>(), 1e-5) << "step " << i + 1;
    EXPECT_NEAR(s1[i]["grad_norm"].get<double>(), s2[i]["grad_norm"].get<double>(), 1e-4) << "step " << i + 1;
    EXPECT_GT(s2[i]["comm_bytes"].get<double>(), 4.0 * 22e6);  // MiniLM's 22.7M float32 gradients
  }
  auto e1 = records(one, "eval"), e2 = records(two, "eval");
  ASSERT_EQ(e1.size(), 4u);
  ASSERT_EQ(e2.size(), 4u);
  for (std::size_t i = 0; i < e1.size(); ++i) {
    EXPECT_NEAR(e1[i]["score"].get<double>(), e2[i]["score"].get<double>(), 1e-5);
    EXPECT_EQ(e1[i]["best"], e2[i]["best"]);
  }
}

// A launcher killed mid-run (its ranks go with it) and started again with --resume ends with the
// weights of the uninterrupted 2-rank run, bit for bit (same shares, same reductions). The model
// keeps its dropout here: each rank must restore its own dropout generator from the checkpoint.
TEST(DataParallel, KilledLauncherResumes) {
  Runs r;
  r.student = rankemb::test::asset("all-MiniLM-L6-v2");
  ASSERT_EQ(run(r.args("two", {"--nproc", "2"}), r.err("two")), 0) << slurp(r.err("two"));
  const fs::path three = r.tmp / "three";
  auto args = r.args("three", {"--nproc", "2"});
  const pid_t launcher = spawn(args, {}, r.err("three"));
  ASSERT_TRUE(wait_for_steps(three, 12, launcher)) << "the run ended before it could be killed: "
                                                  << slurp(r.err("three"));
  ::kill(launcher, SIGKILL);
  wait_status(launcher);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the ranks receive SIGTERM
  ASSERT_LT(records(three, "step").size(), 20u);
  args.push_back("--resume");
  ASSERT_EQ(run(args, r.err("three-resume")), 0) << slurp(r.err("three-resume"));
  EXPECT_EQ(max_diff(three / "checkpoint" / "model.safetensors", r.tmp / "two" / "checkpoint" / "model.safetensors"), 0.0);
  EXPECT_EQ(max_diff(three / "best" / "model.safetensors", r.tmp / "two" / "best" / "model.safetensors"), 0.0);
  EXPECT_EQ(records(three, "step").size(), 20u);
}

// Started as torchrun starts ranks (environment only); rank 1 killed after a few steps: rank 0
// fails, not hangs, naming itself and the failed operation.
TEST(DataParallel, KilledRankFailsTheJob) {
  Runs r;
  const fs::path four = r.tmp / "four";
  auto args = r.args("four");
  const std::string port = std::to_string(rankemb::dist::free_loopback_port());
  std::vector<pid_t> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.push_back(spawn(args,
                          {{"RANK", std::to_string(rank)}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"},
                           {"MASTER_PORT", port}, {"OMP_NUM_THREADS", "1"}},
                          r.err("four." + std::to_string(rank))));
  }
  ASSERT_TRUE(wait_for_steps(four, 3, ranks[0])) << slurp(r.err("four.0"));
  const auto t0 = Clock::now();
  ::kill(ranks[1], SIGKILL);
  wait_status(ranks[1]);
  const int rc = wait_status(ranks[0]);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(60));
  EXPECT_EQ(rc, 1);
  const std::string err = slurp(r.err("four.0"));
  EXPECT_NE(err.find("[rank 0] error: rank 0 of 2:"), std::string::npos) << err;
  EXPECT_NE(err.find("failed"), std::string::npos) << err;
}

TEST(DataParallel, BatchSmallerThanWorldIsRefused) {
  Runs r;
  auto args = r.args("five", {"--nproc", "4"});
  *(std::find(args.begin(), args.end(), "--batch") + 1) = "2";
  EXPECT_EQ(run(args, r.err("five")), 2);
  EXPECT_NE(slurp(r.err("five")).find("cannot be shared by 4 ranks"), std::string::npos) << slurp(r.err("five"));
}

}  // namespace
