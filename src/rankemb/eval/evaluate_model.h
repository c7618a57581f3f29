// Evaluating a model directory: load the encoder (models/), run the selected tasks on it through
// models::encoder_embed_fn, and report the rows an STS task left out. Shared by `rankemb eval`
// and the pipeline's last stage.
#pragma once

#include <filesystem>

#include "rankemb/eval/report.h"
#include "rankemb/models/encoder.h"
#include "rankemb/util/progress.h"

namespace rankemb::eval {

// `progress` sees the encoder's sentences (one start() per task group). `batch` is the encoding
// batch. report.model is the directory as given.
EvalReport evaluate_model_dir(const std::filesystem::path& model, const models::LoadOptions& load, int batch,
                              const EvalOptions& options, const TaskSelection& tasks, Progress& progress);

}  // namespace rankemb::eval
