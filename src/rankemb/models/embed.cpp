#include "rankemb/models/embed.h"

#include <omp.h>

#include <algorithm>

#include <ATen/Parallel.h>
#include <torch/torch.h>

namespace rankemb::models {

EmbedFn encoder_embed_fn(models::SentenceEncoder& encoder, const models::EncodeOptions& options, Progress& progress) {
  return [&encoder, options, &progress](const std::vector<std::string>& texts) {
    const torch::Tensor m = encoder.encode(texts, options, progress).to(torch::kFloat32).contiguous();
    const auto rows = static_cast<std::size_t>(m.size(0)), cols = static_cast<std::size_t>(m.size(1));
    const float* p = m.data_ptr<float>();
    std::vector<std::vector<float>> out(rows);
    for (std::size_t i = 0; i < rows; ++i) out[i].assign(p + i * cols, p + (i + 1) * cols);
    return out;
  };
}

EmbedFn per_text_embed_fn(models::SentenceEncoder& encoder) {
  static NullProgress quiet;  // stateless
  return encoder_embed_fn(encoder, {.batch = 1}, quiet);
}

int take_share_of_threads(int worker, int workers) {
  // ATen gives a thread the process's count at its first parallel call (once per thread, lazily):
  // get_num_threads() runs that now, so it cannot undo the setting below later.
  const int total = at::get_num_threads();
  at::internal::lazy_init_num_threads();  // the copy inlined here, as in at::parallel_for callers
  workers = std::max(1, workers);
  const int share = std::max(1, total / workers + (worker < total % workers ? 1 : 0));
  omp_set_num_threads(share);
  return share;
}

}  // namespace rankemb::models
