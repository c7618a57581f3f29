// The bridge from an encoder to the model-using commands (serve, index build, search): load it
// once with the user's choices, describe it for the server, embed the search probe.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "rankemb/models/encoder.h"
#include "rankemb/serve/server.h"

namespace rankemb::cli {

struct EncoderChoice {
  std::string model, pooler;
  Dtype dtype = Dtype::Float32;
  Device device;
  int batch = 64;
  int max_length = 0;  // 0 = the model's own limit
  bool int8 = false;
};

// Adds -m/--model, --pooler, --dtype, --int8, --device, --batch, --max-length to `cmd`.
void add_encoder_options(CLI::App* cmd, EncoderChoice& choice, bool model_required);
std::unique_ptr<models::SentenceEncoder> load_chosen_encoder(const EncoderChoice& choice);
// `encoder` must outlive the result.
serve::EmbeddingModel embedding_model(models::SentenceEncoder& encoder, const EncoderChoice& choice);

}  // namespace rankemb::cli
