#include "rankemb/eval/evaluate_model.h"

#include "rankemb/models/embed.h"
#include "rankemb/util/log.h"

namespace rankemb::eval {

EvalReport evaluate_model_dir(const std::filesystem::path& model, const models::LoadOptions& load, int batch,
                              const EvalOptions& options, const TaskSelection& tasks, Progress& progress) {
  auto encoder = models::load_encoder(model, load);
  log::info("evaluating {} (pooler {}, dim {}, {})", model.string(), models::pooler_name(encoder->pooler()),
            encoder->dim(), load.int8 ? std::string_view("int8") : dtype_name(load.dtype));
  NullProgress table_progress;  // the encoder reports progress itself (one call per task group)
  const auto embed = models::encoder_embed_fn(*encoder, {.batch = batch}, progress);
  EvalReport report = run_eval(tasks, options, embed, table_progress);
  report.model = model.string();
  for (const auto* group : {&report.sts, &report.dev})
    for (const auto& r : *group)
      for (const auto& s : r.skipped) log::warn("{}: {}: row left out: {}", r.name, s.where, s.reason);
  return report;
}

}  // namespace rankemb::eval
