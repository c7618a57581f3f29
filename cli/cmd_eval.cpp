// rankemb eval: STS12-16 / STS-B / SICK-R, the dev set, reranking and the transfer tasks with the
// paper's protocol (issue 4); an aligned table on stdout, a progress bar on stderr, full results
// as JSON. The work is eval::run_eval (src/rankemb/eval/report.h); this file loads the models and
// prints.
#include <iostream>

#include "cli.h"
#include "rankemb/eval/evaluate_model.h"
#include "rankemb/eval/report.h"
#include "rankemb/io/file.h"
#include "rankemb/models/encoder.h"
#include "rankemb/util/error.h"

namespace rankemb::cli {

namespace {
struct EvalArgs {
  std::string model, compare, tasks = "sts", pooler, data_dir, output, text = "senteval";
  Dtype dtype = Dtype::Float32;
  Device device;
  int batch = 64;
  bool int8 = false;
};

eval::EvalReport evaluate_model(const std::string& dir, const EvalArgs& a, const eval::TaskSelection& tasks) {
  models::LoadOptions load{.dtype = a.dtype, .device = a.device, .int8 = a.int8};
  if (!a.pooler.empty()) load.pooler = models::parse_pooler(a.pooler);
  eval::EvalOptions options{.data_dir = a.data_dir, .text = eval::parse_text_variant(a.text)};  // empty: the default
  const std::unique_ptr<Progress> progress = make_progress();
  return eval::evaluate_model_dir(dir, load, a.batch, options, tasks, *progress);
}

int run_eval(const EvalArgs& a) {
  if (!a.output.empty()) {
    auto inputs = models::model_input_files(a.model);
    if (!a.compare.empty())
      for (auto& f : models::model_input_files(a.compare)) inputs.push_back(std::move(f));
    io::check_not_an_input(a.output, inputs);
  }
  const auto tasks = eval::parse_tasks(a.tasks);
  const auto report = evaluate_model(a.model, a, tasks);
  if (a.compare.empty()) {
    std::cout << eval::format_table(report);
    if (!a.output.empty()) io::write_atomic(a.output, eval::report_json(report).dump(2) + "\n");
    std::cout.flush();
    return 0;
  }
  const auto other = evaluate_model(a.compare, a, tasks);
  std::cout << eval::format_table(report) << '\n' << eval::format_table(other) << '\n' << eval::format_comparison(report, other);
  if (!a.output.empty()) {
    nlohmann::json j = {{"a", eval::report_json(report)}, {"b", eval::report_json(other)}};
    io::write_atomic(a.output, j.dump(2) + "\n");
  }
  std::cout.flush();
  return 0;
}
}  // namespace

void register_eval(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = root.add_subcommand("eval", "Evaluate an encoder on STS, the dev set, reranking and transfer tasks");
  cmd->add_option("-m,--model", a->model, "Model directory")->required();
  cmd->add_option("--compare", a->compare, "Second model directory: print both side by side with deltas");
  cmd->add_option("--tasks", a->tasks,
                  "Comma-separated: sts, dev, rerank, transfer, or single task names (sts12 ... sts16, stsb, sickr, trecqa, "
                  "mr, cr, subj, mpqa, sst2, trec, mrpc, or a reranking file *.jsonl with query/positive/negative)");
  cmd->add_option("--text", a->text, "STS text variant: senteval (paper-comparable) or raw")->check(CLI::IsMember({"senteval", "raw"}));
  cmd->add_option("--pooler", a->pooler, "Pooling override (cls, cls_before_pooler, avg, avg_first_last, avg_top2, max)");
  cmd->add_option("--batch", a->batch, "Sentences per batch")->check(positive());
  add_dtype_option(cmd, a->dtype, "float32 or bfloat16");
  add_int8_option(cmd, a->int8);
  add_device_option(cmd, a->device);
  cmd->add_option("--data-dir", a->data_dir, "Benchmark data directory (default: $RANKEMB_DATA_DIR or ../shared/data)");
  cmd->add_option("--json", a->output, "Write the full results as JSON to this file (with --compare: {\"a\": ..., \"b\": ...})");
  cmd->callback([a, &rc] { rc = run_eval(*a); });
}

}  // namespace rankemb::cli
