#include "rankemb/dist/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <utility>

#include "rankemb/util/error.h"
#include "rankemb/util/log.h"
#include "rankemb/util/types.h"

extern char** environ;

namespace rankemb::dist {

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  RANKEMB_CHECK(fd >= 0, ErrorCode::Other, "socket(): {}", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  ::close(fd);
  RANKEMB_CHECK(ok, ErrorCode::Other, "finding a free port on 127.0.0.1: {}", std::strerror(err));
  return ntohs(addr.sin_port);
}

namespace {

int exit_status(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 1;
}

// The environment of rank `rank`: this process's, with the launch contract set and
// OMP_NUM_THREADS added unless the user set it.
std::vector<std::string> rank_environment(int rank, int nproc, int port, int threads) {
  const std::pair<std::string, std::string> contract[] = {
      {"RANK", std::to_string(rank)},       {"LOCAL_RANK", std::to_string(rank)},
      {"WORLD_SIZE", std::to_string(nproc)}, {"LOCAL_WORLD_SIZE", std::to_string(nproc)},
      {"MASTER_ADDR", "127.0.0.1"},          {"MASTER_PORT", std::to_string(port)}};
  std::vector<std::string> env;
  bool has_omp = false;
  for (char** e = environ; *e; ++e) {
    const std::string_view kv(*e);
    const std::string_view key = kv.substr(0, kv.find('='));
    has_omp = has_omp || key == "OMP_NUM_THREADS";
    const bool replaced = std::any_of(std::begin(contract), std::end(contract), [&](const auto& c) { return c.first == key; });
    if (!replaced) env.emplace_back(kv);
  }
  for (const auto& [k, v] : contract) env.push_back(k + "=" + v);
  if (!has_omp) env.push_back("OMP_NUM_THREADS=" + std::to_string(threads));
  return env;
}

// Starts rank `rank`. Everything is prepared before fork: between fork and exec the child of a
// multi-threaded process may only make async-signal-safe calls.
pid_t spawn_rank(int rank, int nproc, int port, int threads, const std::vector<std::string>& args) {
  std::string self = "/proc/self/exe";
  std::vector<std::string> arg_copy = args, env_copy = rank_environment(rank, nproc, port, threads);
  std::vector<char*> argv{self.data()}, envp;
  for (auto& a : arg_copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_copy) envp.push_back(e.data());
  envp.push_back(nullptr);
  static constexpr char kExecFailed[] = "rankemb: a rank could not exec /proc/self/exe\n";
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  RANKEMB_CHECK(pid >= 0, ErrorCode::Other, "starting rank {}: fork(): {}", rank, std::strerror(errno));
  if (pid == 0) {
    // A launcher that dies (killed, Ctrl-C) takes its ranks with it instead of leaving them
    // waiting on each other until the timeout.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(128 + SIGTERM);
    ::execve(self.c_str(), argv.data(), envp.data());
    [[maybe_unused]] auto n = ::write(2, kExecFailed, sizeof(kExecFailed) - 1);
    ::_exit(127);
  }
  return pid;
}

// Stops the ranks still running: SIGTERM, then SIGKILL for any left after the grace period.
void stop_ranks(std::vector<pid_t>& pids) {
  for (pid_t p : pids)
    if (p > 0) ::kill(p, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (pid_t& p : pids) {
    while (p > 0) {
      int st = 0;
      if (::waitpid(p, &st, WNOHANG) == p) {
        p = 0;
      } else if (std::chrono::steady_clock::now() > deadline) {
        ::kill(p, SIGKILL);
        ::waitpid(p, &st, 0);
        p = 0;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
}

}  // namespace

int run_local_ranks(int nproc, const std::vector<std::string>& args) {
  RANKEMB_CHECK(nproc >= 1 && nproc <= 256, ErrorCode::Usage, "--nproc must be between 1 and 256, got {}", nproc);
  const int cores = usable_cpu_cores();
  const int threads = std::max(1, cores / nproc);
  const int port = free_loopback_port();
  log::info("starting {} local ranks (rendezvous 127.0.0.1:{}, {} thread(s) each)", nproc, port, threads);
  std::vector<pid_t> pids;
  try {
    for (int r = 0; r < nproc; ++r) pids.push_back(spawn_rank(r, nproc, port, threads, args));
  } catch (const Error&) {
    stop_ranks(pids);
    throw;
  }
  int result = 0;
  for (std::size_t left = pids.size(); left > 0; --left) {
    int st = 0;
    pid_t done = ::waitpid(-1, &st, 0);
    if (done < 0) {
      if (errno == EINTR) { ++left; continue; }
      break;
    }
    auto it = std::find(pids.begin(), pids.end(), done);
    if (it == pids.end()) { ++left; continue; }
    *it = 0;
    const int status = exit_status(st);
    if (status != 0 && result == 0) {
      result = status;
      log::error("rank {} exited with status {}; stopping the other ranks", it - pids.begin(), status);
      stop_ranks(pids);
      break;
    }
  }
  return result;
}

}  // namespace rankemb::dist
