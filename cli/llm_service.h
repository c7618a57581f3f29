// The bridge from a decoder to `rankemb serve --llm`: load it once with the user's choices and
// describe it for the server's generation routes (serve::TextModel): text completions through
// llm::TextCompleter, and chains through the same backend and loop as `rankemb generate`.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "rankemb/serve/server.h"
#include "rankemb/util/device.h"
#include "rankemb/util/types.h"

namespace rankemb::cli {

struct LlmChoice {
  std::string model;  // --llm: a GGUF file or Hugging Face directory; empty = no LLM routes
  Dtype dtype = Dtype::Float32;
  Device device;
  std::string preset = "auto", chat_template = "auto";
  std::string drift_guard;  // --drift-guard: an encoder directory, "none", or "" (the preset decides)
  std::size_t max_context = 4096;
};

// Adds --llm, --llm-dtype, --llm-device, --preset, --chat-template, --drift-guard and --max-context to `cmd`.
void add_llm_options(CLI::App* cmd, LlmChoice& choice);
// Loads the decoder; the TextModel's functions share it and must be called from one thread.
serve::TextModel load_text_model(const LlmChoice& choice);

}  // namespace rankemb::cli
