#include "rankemb/train/fused_adamw.h"

#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <ATen/Parallel.h>

#include "rankemb/models/kernels/switch.h"
#include "rankemb/models/kernels/target_clones.h"

// Built with -fno-math-errno (src/rankemb/CMakeLists.txt) so that sqrt vectorizes.

namespace rankemb::train {
namespace {

// The key libtorch's optimizers file a parameter's state under: the TensorImpl address as text
// (c10::guts::to_string, i.e. an ostream of the pointer) in libtorch 1.x, the address itself in 2.x.
template <typename Key>
Key state_key(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;
    key << p.unsafeGetTensorImpl();
    return key.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

struct Coefficients {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bias_correction2, eps, neg_step_size;
};

// One element as libtorch computes it: p *= 1 - lr wd; m = m b1 + (1 - b1) g;
// v = v b2 + (1 - b2) g g; denom = sqrt(v) / sqrt(bc2) + eps; p += -lr / bc1 * m / denom.
RANKEMB_VECTOR_CLONES
void update(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, std::int64_t n,
            const Coefficients& c, bool decay) {
  const float keep = decay ? c.decay : 1.0f;  // p * 1 is p: one loop for both
  for (std::int64_t i = 0; i < n; ++i) {
    const float pi = p[i] * keep;
    const float gi = g[i];
    const float mi = m[i] * c.beta1 + c.one_minus_beta1 * gi;
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
    const float denom = std::sqrt(vi) / c.sqrt_bias_correction2 + c.eps;
    p[i] = pi + c.neg_step_size * mi / denom;  // addcdiv: self + value * t1 / t2
    m[i] = mi;
    v[i] = vi;
  }
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::Tensor loss;
  if (closure != nullptr) {  // first: it computes the gradients the checks below look at
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  auto libtorch_step = [&] {
    torch::optim::AdamW::step();
    return loss;
  };
  if (!models::kernels::enabled()) return libtorch_step();
  // One pass finds (or creates, as libtorch would: zeros, step 0) each parameter's state and
  // checks that every tensor of the update can be read in place; anything else (not CPU float32
  // contiguous, a sparse gradient, state of another size from a checkpoint of another model,
  // amsgrad) leaves the whole step to libtorch, which handles or reports it.
  struct Slot {
    torch::Tensor p;
    torch::optim::AdamWParamState* state;
    const torch::optim::AdamWOptions* options;
  };
  std::vector<Slot> slots;
  using Key = typename std::decay_t<decltype(state_)>::key_type;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    if (o.amsgrad()) return libtorch_step();
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const Key key = state_key<Key>(p);
      auto found = state_.find(key);
      if (found == state_.end()) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        found = state_.emplace(key, std::move(fresh)).first;
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*found->second);
      auto plain = [&](const torch::Tensor& t) {  // sparse first: is_contiguous() throws on a sparse tensor
        return !t.is_sparse() && t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.is_contiguous() &&
               t.numel() == p.numel();
      };
      if (!plain(p) || !plain(p.grad()) || !plain(state.exp_avg()) || !plain(state.exp_avg_sq())) {
        return libtorch_step();
      }
      slots.push_back({p, &state, &o});
    }
  }
  torch::NoGradGuard no_grad;
  for (const Slot& slot : slots) {
    const auto& o = *slot.options;
    auto& state = *slot.state;
    state.step(state.step() + 1);
    const auto [beta1, beta2] = o.betas();
    const double bias_correction1 = 1 - std::pow(beta1, state.step());
    const double bias_correction2 = 1 - std::pow(beta2, state.step());
    const Coefficients c{static_cast<float>(1 - o.lr() * o.weight_decay()),
                         static_cast<float>(beta1),
                         static_cast<float>(1 - beta1),
                         static_cast<float>(beta2),
                         static_cast<float>(1 - beta2),
                         static_cast<float>(std::sqrt(bias_correction2)),
                         static_cast<float>(o.eps()),
                         static_cast<float>(-(o.lr() / bias_correction1))};
    const bool decay = o.weight_decay() != 0;
    float* pp = slot.p.data_ptr<float>();
    const float* gp = slot.p.grad().data_ptr<float>();
    float* mp = state.exp_avg().data_ptr<float>();
    float* vp = state.exp_avg_sq().data_ptr<float>();
    at::parallel_for(0, slot.p.numel(), 1 << 15, [&](std::int64_t begin, std::int64_t end) {
      update(pp + begin, gp + begin, mp + begin, vp + begin, end - begin, c, decay);
    });
  }
  return loss;
}

}  // namespace rankemb::train
