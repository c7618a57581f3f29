// rankemb encode: sentences (one per line) -> embeddings as .npy or JSONL. All sentences are read
// and checked first (empty lines and invalid UTF-8 are input errors naming the line), then encoded
// in length-sorted batches; the output is written only once everything succeeded (atomically for
// files), so a failure leaves nothing half-written.
#include <unistd.h>

#include <iostream>
#include <sstream>

#include "cli.h"
#include "rankemb/io/file.h"
#include "rankemb/io/npy.h"
#include "rankemb/models/encoder.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"
#include "rankemb/util/progress.h"
#include "rankemb/util/unicode.h"

namespace rankemb::cli {

namespace {
struct EncodeArgs {
  std::string model, input = "-", output = "-", format = "auto", pooler;
  Dtype dtype = Dtype::Float32;
  Device device;
  int batch = 64, max_length = 0;
  bool normalize = false, int8 = false;
};

std::string resolve_format(const EncodeArgs& a) {
  if (a.format != "auto") return a.format;
  if (a.output == "-" || a.output.empty()) return "jsonl";
  std::string ext = std::filesystem::path(a.output).extension().string();
  if (ext == ".npy") return "npy";
  if (ext == ".jsonl" || ext == ".json") return "jsonl";
  fail(ErrorCode::Usage, "cannot tell the format of {} from its extension; use .npy or .jsonl, or --format", a.output);
}

void write_jsonl(std::ostream& out, const torch::Tensor& m) {
  const float* p = m.data_ptr<float>();
  auto rows = m.size(0), cols = m.size(1);
  std::string line;
  for (std::int64_t i = 0; i < rows; ++i) {
    line = "{\"embedding\":[";
    for (std::int64_t j = 0; j < cols; ++j) {
      if (j) line += ',';
      line += fmt::format("{}", p[i * cols + j]);  // shortest text that reads back as the same float
    }
    line += "]}\n";
    out << line;
  }
}

int run_encode(const EncodeArgs& a) {
  std::string format = resolve_format(a);
  RANKEMB_CHECK(!(format == "npy" && (a.output == "-" || a.output.empty())), ErrorCode::Usage,
                "--format npy needs an output file (-o out.npy)");

  if (a.output != "-" && a.input != "-") io::check_not_an_input(a.output, {a.input});
  LineReader reader(a.input);
  std::vector<std::string> texts;
  for (std::string line; reader.next(line);) {
    std::string where = fmt::format("{}:{}", reader.name(), reader.line_number());
    if (line.empty()) fail(ErrorCode::Input, "{}: empty line (every line must hold one sentence)", where);
    unicode::require_utf8(line, where);
    texts.push_back(std::move(line));
  }

  models::LoadOptions load{.dtype = a.dtype, .device = a.device, .int8 = a.int8};
  if (!a.pooler.empty()) load.pooler = models::parse_pooler(a.pooler);
  auto encoder = models::load_encoder(a.model, load);
  log::info("encoding {} sentences with {} (pooler {}, dim {}, {})", texts.size(), a.model,
            models::pooler_name(encoder->pooler()), encoder->dim(), precision_name(a.dtype, a.int8));

  std::unique_ptr<Progress> progress = make_progress();
  torch::Tensor m = encoder->encode(texts, {.batch = a.batch, .max_length = a.max_length, .normalize = a.normalize},
                                    *progress);
  m = m.contiguous();

  if (format == "npy") {
    std::vector<std::int64_t> shape{m.size(0), m.size(1)};
    io::write_npy(a.output, {m.data_ptr<float>(), static_cast<std::size_t>(m.numel())}, shape);
  } else if (a.output == "-" || a.output.empty()) {
    write_jsonl(std::cout, m);
    std::cout.flush();
  } else {
    io::write_atomic(a.output, [&](std::ostream& out) { write_jsonl(out, m); });
  }
  return 0;
}
}  // namespace

void register_encode(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<EncodeArgs>();
  auto* cmd = root.add_subcommand("encode", "Encode sentences (one per line) into embeddings (.npy or JSONL)");
  cmd->add_option("-m,--model", a->model, "Model directory (Hugging Face or sentence-transformers layout, or converted USE-Lite)")->required();
  cmd->add_option("input", a->input, "Input file, one sentence per line ('-' = stdin)");
  cmd->add_option("-o,--output", a->output, "Output file (.npy float32 matrix, or .jsonl); '-' = JSONL on stdout");
  cmd->add_option("--format", a->format, "Output format: auto (by extension), npy, jsonl")->check(CLI::IsMember({"auto", "npy", "jsonl"}));
  cmd->add_option("--pooler", a->pooler, "Pooling: cls, cls_before_pooler, avg, avg_first_last, avg_top2, max (default: the model's own)");
  cmd->add_option("--batch", a->batch, "Sentences per batch (batches are sorted by length)")->check(positive());
  cmd->add_option("--max-length", a->max_length, "Truncate inputs to this many tokens, specials included (0 = the model's max_seq_length or position limit)")->check(non_negative());
  add_dtype_option(cmd, a->dtype, "Compute dtype: float32 or bfloat16");
  add_int8_option(cmd, a->int8);
  add_device_option(cmd, a->device);
  cmd->add_flag("--normalize", a->normalize, "L2-normalize the embeddings");
  cmd->callback([a, &rc] { rc = run_encode(*a); });
}

}  // namespace rankemb::cli
