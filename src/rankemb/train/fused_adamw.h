// AdamW with one pass over memory per parameter on the CPU. libtorch's AdamW::step runs seven
// tensor operations per parameter (two of them allocate a parameter-sized temporary), so a MiniLM
// step reads and writes its 22.7M values some fifteen times: ~150 ms of the step on 2 cores
// (scripts/profile_summary.py). Here each element's update is computed in one loop, in the same
// arithmetic as libtorch's (float32, the same order of operations; only the rounding of a fused
// multiply-add may differ, a float32 ulp), split over libtorch's intra-op threads by element, so
// the result does not depend on the thread count.
//
// A torch::optim::AdamW in every other respect: options, param groups, the per-parameter state
// (step, exp_avg, exp_avg_sq) and its serialization, so checkpoints written before load here and
// the other way round. Where any parameter cannot be updated in place (not on the CPU, not
// float32, not contiguous, a sparse gradient, amsgrad, state of another size), the whole step is
// libtorch's, as it is when RANKEMB_KERNELS=off (models/kernels/switch.h).
#pragma once

#include <torch/optim/adamw.h>

namespace rankemb::train {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace rankemb::train
