// rankemb::dist Group: the ranks of one data-parallel job, joined into a c10d Gloo process group
// through a TCPStore at MASTER_ADDR:MASTER_PORT (hosted by rank 0, or by torchrun's agent).
// The collectives are the few stage 2 needs; each blocks until every rank has called it (in the
// same order on every rank) or the timeout passes. A peer that exits closes its connections, so
// the others fail at once instead of waiting: every failure is an Error(Other) naming this rank,
// the operation and the cause, so a launcher sees the whole job fail, never hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "rankemb/dist/env.h"

namespace rankemb::dist {

class Group {
 public:
  // Connects to the store and forms the group; Error(Other) naming the address when the store
  // cannot be reached within `timeout`, which also bounds every collective after.
  Group(const LaunchEnv& env, std::chrono::seconds timeout);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const;
  int size() const;

  // Sums the gradients of `params` (all of one dtype, float32 in training) over the ranks, in
  // place, as one flat buffer. A parameter with no gradient on this rank (it took no chain this step, or the
  // parameter is unused) contributes zeros; one with no gradient on any rank keeps none, as in a
  // single process (so AdamW leaves it alone). Returns the bytes this rank sent to the reduction.
  std::uint64_t allreduce_gradients(const std::vector<at::Tensor>& params);
  double sum(double value);                        // over the ranks
  double broadcast(double value, int root = 0);    // root's value on every rank
  // Every rank's `blob` (a 1-D uint8 tensor of the same length everywhere), in rank order.
  std::vector<at::Tensor> allgather(const at::Tensor& blob);
  void barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rankemb::dist
