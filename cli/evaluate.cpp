#include "evaluate.h"

#include "cli.h"
#include "rankemb/eval/encoder_embed.h"
#include "rankemb/util/log.h"
#include "rankemb/util/progress.h"

namespace rankemb::cli {

eval::EvalReport evaluate_model_dir(const std::filesystem::path& model, const models::LoadOptions& load, int batch,
                                    const eval::EvalOptions& options, const eval::TaskSelection& tasks) {
  auto encoder = models::load_encoder(model, load);
  log::info("evaluating {} (pooler {}, dim {}, {})", model.string(), models::pooler_name(encoder->pooler()),
            encoder->dim(), load.dtype == torch::kBFloat16 ? "bfloat16" : "float32");
  std::unique_ptr<Progress> progress = make_progress();
  NullProgress table_progress;  // the encoder reports progress itself (one call per task group)
  const auto embed = eval::encoder_embed_fn(*encoder, {.batch = batch}, *progress);
  eval::EvalReport report = eval::run_eval(tasks, options, embed, table_progress);
  report.model = model.string();
  for (const auto* group : {&report.sts, &report.dev})
    for (const auto& r : *group)
      for (const auto& s : r.skipped) log::warn("{}: {}: row left out: {}", r.name, s.where, s.reason);
  return report;
}

}  // namespace rankemb::cli
