#include "rankemb/dist/group.h"

#include <cstdlib>
#include <string_view>

#include <ATen/ATen.h>
#include <torch/version.h>

// Debian's libtorch (and upstream wheels) are built with Gloo; the header hides its class behind
// the build's own macro.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "rankemb/util/error.h"

namespace rankemb::dist {

namespace {

bool is_loopback(std::string_view addr) {
  return addr == "localhost" || addr == "::1" || addr.substr(0, 4) == "127.";
}

// The transport the ranks connect their pairs over: the interface a user names (Gloo's own
// GLOO_SOCKET_IFNAME, as torch.distributed reads it), loopback for a single-machine job on a
// loopback rendezvous, else the address this machine's hostname resolves to.
std::shared_ptr<::gloo::transport::Device> make_device(const LaunchEnv& env) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (is_loopback(env.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// torchrun's agent hosts the store its ranks join, and the store's wire protocol changed between
// torch releases (a 2.5 agent closes the connection of a 1.13 client): say so when joining fails.
std::string agent_store_hint(const LaunchEnv& env) {
  if (!env.agent_store) return {};
  return " (the store is torchrun's own, TORCHELASTIC_USE_AGENT_STORE=True: use the torchrun of the torch release "
         "rankemb was built with, " TORCH_VERSION ")";
}

// An exception's message without libtorch's backtrace.
std::string cause(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

}  // namespace

struct Group::Impl {
  LaunchEnv env;
  std::chrono::milliseconds timeout{};
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;

  // Runs one collective; libtorch's and Gloo's exceptions become an Error naming rank and operation.
  template <typename MakeWork>
  void run(const char* op, MakeWork&& make_work) {
    try {
      auto work = make_work();
      work->wait(timeout);
    } catch (const std::exception& e) {
      fail(ErrorCode::Other, "rank {} of {}: {} failed (a rank exited, or none answered within {} s): {}", env.rank,
           env.world_size, op, timeout.count() / 1000, cause(e));
    }
  }

  void allreduce(at::Tensor& t, const char* op) {
    std::vector<at::Tensor> tensors{t};
    run(op, [&] { return pg->allreduce(tensors); });
  }
};

Group::Group(const LaunchEnv& env, std::chrono::seconds timeout) : impl_(std::make_unique<Impl>()) {
  RANKEMB_CHECK(timeout.count() > 0, ErrorCode::Usage, "the distributed timeout must be positive, got {} s",
                timeout.count());
  auto& m = *impl_;
  m.env = env;
  m.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = env.master_port;
    so.isServer = !env.agent_store && env.rank == 0;
    if (!env.agent_store) so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.timeout = m.timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    // Our own key space: torchrun's agent keeps its keys in the same store, and a restarted job
    // (TORCHELASTIC_RESTART_COUNT) must not read the keys of the attempt before it.
    auto store = c10::make_intrusive<c10d::PrefixStore>("rankemb/" + std::to_string(env.restart_count), tcp);
    auto options = c10d::ProcessGroupGloo::Options::create(m.timeout);
    options->devices.push_back(make_device(env));
    m.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
  } catch (const std::exception& e) {
    fail(ErrorCode::Other, "rank {} of {}: joining the process group at {} failed within {} s: {}{}", env.rank,
         env.world_size, where, timeout.count(), cause(e), agent_store_hint(env));
  }
}

Group::~Group() = default;

int Group::rank() const { return impl_->env.rank; }
int Group::size() const { return impl_->env.world_size; }

std::uint64_t Group::allreduce_gradients(const std::vector<at::Tensor>& params) {
  auto& m = *impl_;
  at::NoGradGuard no_grad;
  const auto n = static_cast<std::int64_t>(params.size());
  // Rank 0's parameter count first, in a buffer of the same size everywhere: ranks holding
  // different models fail here, naming the cause, instead of inside Gloo on mismatched buffers.
  const double leader_n = broadcast(static_cast<double>(n));
  RANKEMB_CHECK(leader_n == static_cast<double>(n), ErrorCode::Other,
                "rank {}: the ranks train models with different parameter counts ({} here, {} on rank 0)", m.env.rank,
                n, leader_n);
  // Which parameters have a gradient on any rank.
  at::Tensor defined = at::zeros({n}, at::kDouble);
  for (std::int64_t i = 0; i < n; ++i)
    if (params[static_cast<std::size_t>(i)].grad().defined()) defined[i] = 1.0;
  m.allreduce(defined, "all-reduce of the gradient layout");
  const auto flags = defined.accessor<double, 1>();

  std::vector<at::Tensor> grads;
  for (std::int64_t i = 0; i < n; ++i) {
    if (flags[i] == 0) continue;
    at::Tensor p = params[static_cast<std::size_t>(i)];
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    grads.push_back(p.grad());
  }
  if (grads.empty()) return 0;
  std::vector<at::Tensor> views;
  views.reserve(grads.size());
  for (const auto& g : grads) views.push_back(g.reshape(-1));
  at::Tensor flat = at::cat(views);
  m.allreduce(flat, "all-reduce of the gradients");
  std::int64_t offset = 0;
  for (auto& g : grads) {
    g.view(-1).copy_(flat.narrow(0, offset, g.numel()).view(-1));
    offset += g.numel();
  }
  return static_cast<std::uint64_t>(flat.numel()) * flat.element_size();
}

double Group::sum(double value) {
  at::Tensor t = at::full({1}, value, at::kDouble);
  impl_->allreduce(t, "all-reduce of a scalar");
  return t.item<double>();
}

double Group::broadcast(double value, int root) {
  at::Tensor t = at::full({1}, value, at::kDouble);
  std::vector<at::Tensor> tensors{t};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  impl_->run("broadcast", [&] { return impl_->pg->broadcast(tensors, options); });
  return t.item<double>();
}

std::vector<at::Tensor> Group::allgather(const at::Tensor& blob) {
  RANKEMB_CHECK(blob.dim() == 1 && blob.scalar_type() == at::kByte, ErrorCode::Other,
                "allgather takes a 1-D uint8 tensor");
  auto& m = *impl_;
  std::vector<at::Tensor> input{blob.contiguous()};
  std::vector<std::vector<at::Tensor>> output(1);
  for (int r = 0; r < m.env.world_size; ++r) output[0].push_back(at::empty_like(input[0]));
  m.run("all-gather", [&] { return m.pg->allgather(output, input); });
  return output[0];
}

void Group::barrier() {
  impl_->run("barrier", [&] { return impl_->pg->barrier(); });
}

}  // namespace rankemb::dist
