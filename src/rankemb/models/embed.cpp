#include "rankemb/models/embed.h"

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

}  // namespace rankemb::models
