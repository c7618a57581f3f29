// The bridge from an encoder to the model-using commands (serve, index build, search, and the drift
// guard of generate and /v1/chains): load it once with the user's choices, describe it for the
// server, embed the search probe, judge chain steps.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "rankemb/models/encoder.h"
#include "rankemb/generate/chain_runner.h"
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

// The drift guard's encoder for a chain run (generate::DriftGuard): `given` as it is, "none" = no
// guard (""); when nothing is given, the embedded teacher for the small-model loop (`small`;
// Error(Usage) when it is missing) and no guard otherwise.
std::string drift_guard_encoder(const std::string& given, bool small);
// The guard on `encoder`, loaded from `path` (it must outlive the guard), with these bounds;
// models::per_text_embed_fn, on the encoder's device (the CPU unless it was loaded elsewhere).
generate::DriftGuard drift_guard(models::SentenceEncoder& encoder, const std::string& path, double margin, double max_drop);

}  // namespace rankemb::cli
