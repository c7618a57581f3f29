// One owner for the benches' `--profile FILE` option: while a ProfileTrace with a non-empty path is
// alive, libtorch's profiler records every operator call and, when it ends, writes them to FILE as
// a Chrome trace (chrome://tracing, Perfetto). scripts/profile_summary.py turns that trace into a
// table of self time per operator. An empty path records nothing and costs nothing.
#pragma once

#include <memory>
#include <string>

#include <torch/csrc/autograd/profiler_legacy.h>

namespace rankemb::bench {

class ProfileTrace {
 public:
  explicit ProfileTrace(const std::string& path) {
    if (!path.empty()) guard_ = std::make_unique<torch::autograd::profiler::RecordProfile>(path);
  }

 private:
  std::unique_ptr<torch::autograd::profiler::RecordProfile> guard_;
};

}  // namespace rankemb::bench
