// Shared by `rankemb eval` and `rankemb demo`: load an encoder directory and run the selected
// evaluation tasks on it (progress bar while encoding, rows left out of an STS task logged).
#pragma once

#include <filesystem>

#include "rankemb/eval/report.h"
#include "rankemb/models/encoder.h"

namespace rankemb::cli {

eval::EvalReport evaluate_model_dir(const std::filesystem::path& model, const models::LoadOptions& load, int batch,
                                    const eval::EvalOptions& options, const eval::TaskSelection& tasks);

}  // namespace rankemb::cli
