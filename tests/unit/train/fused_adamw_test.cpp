// FusedAdamW (src/rankemb/train/fused_adamw.h) against libtorch's own AdamW, the reference it
// must equal: the same parameters and gradients for 25 steps, weight decay on and off. Tolerance
// 2e-6 relative to the largest parameter: the two differ only where a fused multiply-add rounds
// once instead of twice. Also: a checkpoint written by either optimizer continues in the other,
// amsgrad (not fused) takes libtorch's step bit for bit, and the thread count changes no bit.
#include "rankemb/train/fused_adamw.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <cstdio>
#include <sstream>
#include <vector>

namespace {

using rankemb::train::FusedAdamW;
using torch::Tensor;
namespace optim = torch::optim;

// Three shapes, one past the parallel split (32k elements per task), all leaves with gradients.
std::vector<Tensor> make_params(std::uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({70000}).requires_grad_(), torch::randn({13, 7}).requires_grad_(),
          torch::randn({5}).requires_grad_()};
}

// Gradients for step `s`, the same for every optimizer under test; one parameter skips odd steps
// (no gradient: neither optimizer may touch it then).
void set_grads(std::vector<Tensor>& params, int s) {
  torch::manual_seed(1000 + s);
  for (std::size_t i = 0; i < params.size(); ++i) {
    params[i].mutable_grad() = (i == 2 && s % 2) ? Tensor() : torch::randn_like(params[i]) * (0.1 * (i + 1));
  }
}

void run(optim::Optimizer& o, std::vector<Tensor>& params, int first, int last) {
  for (int s = first; s < last; ++s) {
    set_grads(params, s);
    o.step();
  }
}

double max_rel_diff(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double scale = std::max(1.0, a[i].abs().max().item<double>());
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>() / scale);
  }
  return worst;
}

class FusedAdamWTest : public ::testing::TestWithParam<double> {};

TEST_P(FusedAdamWTest, MatchesLibtorchAdamW) {
  const auto options = optim::AdamWOptions(1e-2).weight_decay(GetParam());
  std::vector<Tensor> ref = make_params(7), fused = make_params(7);
  optim::AdamW ref_opt(ref, options);
  FusedAdamW fused_opt(fused, options);
  run(ref_opt, ref, 0, 25);
  run(fused_opt, fused, 0, 25);
  const double diff = max_rel_diff(ref, fused);
  std::printf("[weight decay %g] max |fused - libtorch| / max |p| after 25 steps: %.3g\n", GetParam(), diff);
  EXPECT_LT(diff, 2e-6);
  // Fused multiply-adds round differently somewhere in 25 steps: identical bits would mean the
  // fused step fell back to libtorch's and the comparison tested nothing.
  EXPECT_GT(diff, 0.0) << "the fused step did not run";
  EXPECT_GT(max_rel_diff(ref, make_params(7)), 1e-2) << "the parameters moved";
}

// A large eps and tiny gradients, where eps's place in the denominator decides the update.
TEST(FusedAdamW, EpsWhereItMatters) {
  const auto options = optim::AdamWOptions(1e-2).eps(0.1);
  std::vector<Tensor> ref = make_params(4), fused = make_params(4);
  optim::AdamW ref_opt(ref, options);
  FusedAdamW fused_opt(fused, options);
  for (int s = 0; s < 10; ++s) {
    for (auto* params : {&ref, &fused}) {
      set_grads(*params, s);
      for (auto& p : *params) {
        if (p.grad().defined()) p.mutable_grad() = p.grad() * 1e-3;
      }
    }
    ref_opt.step();
    fused_opt.step();
  }
  EXPECT_LT(max_rel_diff(ref, fused), 2e-6);
  EXPECT_GT(max_rel_diff(ref, make_params(4)), 1e-5) << "the parameters moved";
}

INSTANTIATE_TEST_SUITE_P(WeightDecay, FusedAdamWTest, ::testing::Values(0.0, 0.05));

TEST(FusedAdamW, CheckpointsContinueInEitherOptimizer) {
  const auto options = optim::AdamWOptions(1e-2).weight_decay(0.01);
  std::vector<Tensor> straight = make_params(3);
  optim::AdamW straight_opt(straight, options);
  run(straight_opt, straight, 0, 20);

  std::vector<Tensor> a = make_params(3), b = make_params(3);
  FusedAdamW a_opt(a, options);
  optim::AdamW b_opt(b, options);
  run(a_opt, a, 0, 10);
  run(b_opt, b, 0, 10);
  std::stringstream from_fused, from_torch;
  torch::save(a_opt, from_fused);
  torch::save(b_opt, from_torch);
  optim::AdamW a_next(a, options);  // the fused run goes on in libtorch's AdamW, and the other way
  FusedAdamW b_next(b, options);
  torch::load(a_next, from_fused);
  torch::load(b_next, from_torch);
  run(a_next, a, 10, 20);
  run(b_next, b, 10, 20);
  EXPECT_LT(max_rel_diff(straight, a), 2e-6);
  EXPECT_LT(max_rel_diff(straight, b), 2e-6);
}

TEST(FusedAdamW, AmsgradTakesLibtorchsStep) {
  const auto options = optim::AdamWOptions(1e-2).amsgrad(true);
  std::vector<Tensor> ref = make_params(5), fused = make_params(5);
  optim::AdamW ref_opt(ref, options);
  FusedAdamW fused_opt(fused, options);
  run(ref_opt, ref, 0, 6);
  run(fused_opt, fused, 0, 6);
  for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_TRUE(torch::equal(ref[i], fused[i]));
}

TEST(FusedAdamW, SameBitsAtAnyThreadCount) {
  const auto options = optim::AdamWOptions(1e-2).weight_decay(0.01);
  const int before = at::get_num_threads();
  std::vector<Tensor> one = make_params(9), two = make_params(9);
  at::set_num_threads(1);
  FusedAdamW one_opt(one, options);
  run(one_opt, one, 0, 5);
  at::set_num_threads(2);
  FusedAdamW two_opt(two, options);
  run(two_opt, two, 0, 5);
  at::set_num_threads(before);
  for (std::size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(torch::equal(one[i], two[i]));
}

}  // namespace
