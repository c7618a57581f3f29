// rankemb index build / rankemb search: a FAISS index of a corpus (one text per line) under an
// encoder, and top-k queries against it (JSONL: query, rank, id = corpus line, score = cosine,
// text). The index directory records the model; a different model is refused.
#include <chrono>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "model_service.h"
#include "rankemb/io/file.h"
#include "rankemb/models/embed.h"
#include "rankemb/search/index.h"
#include "rankemb/util/error.h"
#include "rankemb/util/log.h"
#include "rankemb/util/unicode.h"

namespace rankemb::cli {

namespace {

namespace fs = std::filesystem;

struct IndexArgs {
  EncoderChoice encoder;
  std::string corpus, output;
  search::IndexSettings settings;
  bool overwrite = false;
};

struct SearchArgs {
  EncoderChoice encoder;
  std::string index, queries_file;
  std::vector<std::string> queries;
  std::size_t k = 10;
};

// Non-empty lines of `path` with their 1-based line numbers; invalid UTF-8 names the line.
void read_corpus(const std::string& path, std::vector<std::int64_t>& ids, std::vector<std::string>& texts) {
  LineReader reader(path);
  for (std::string line; reader.next(line);) {
    if (line.empty()) continue;
    unicode::require_utf8(line, fmt::format("{}:{}", reader.name(), reader.line_number()));
    ids.push_back(static_cast<std::int64_t>(reader.line_number()));
    texts.push_back(std::move(line));
  }
  if (texts.empty()) fail(ErrorCode::Input, "{}: no text to index (one text per line)", reader.name());
}

// recall@10 of the approximate index against exact search, on up to 200 corpus rows as queries.
double approximate_recall(const search::VectorIndex& approx, const search::Rows& rows) {
  const search::VectorIndex exact = search::VectorIndex::build(rows, {.kind = "flat"});
  search::Rows queries;
  const std::size_t stride = std::max<std::size_t>(1, rows.size() / 200);
  for (std::size_t i = 0; i < rows.size() && queries.size() < 200; i += stride) queries.push_back(rows[i]);
  return search::recall_at_k(exact.search(queries, 10), approx.search(queries, 10), 10);
}

int run_index_build(const IndexArgs& a) {
  io::check_not_an_input(a.output, {a.corpus, a.encoder.model});
  if (fs::exists(a.output) && !a.overwrite)
    fail(ErrorCode::Usage, "{} exists; pass --overwrite to replace it", a.output);
  search::IndexDir dir;
  read_corpus(a.corpus, dir.ids, dir.texts);
  auto encoder = load_chosen_encoder(a.encoder);
  serve::EmbeddingModel model = embedding_model(*encoder, a.encoder);
  const auto start = std::chrono::steady_clock::now();
  const std::unique_ptr<Progress> progress = make_progress();
  search::Rows rows = models::encoder_embed_fn(*encoder, {.batch = a.encoder.batch, .max_length = static_cast<std::int64_t>(model.max_input_tokens)},
                                               *progress)(dir.texts);
  dir.index = search::VectorIndex::build(rows, a.settings);
  dir.info = {.model = a.encoder.model,
              .probe = model.embed({search::kProbeSentence}).at(0),
              .settings = a.settings,
              .count = dir.texts.size(),
              .dim = model.dim,
              .recall_at_10 = std::nullopt,
              .corpus = a.corpus,
              .precision = model.dtype};
  search::l2_normalize(dir.info.probe);
  if (a.settings.kind != "flat") dir.info.recall_at_10 = approximate_recall(dir.index, rows);
  search::write_index_dir(a.output, dir);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log::info("indexed {} texts ({}-wide, {}) in {:.1f} s -> {}{}", dir.texts.size(), model.dim, a.settings.kind, seconds, a.output,
            dir.info.recall_at_10 ? fmt::format("; recall@10 against exact search {:.4f}", *dir.info.recall_at_10) : "");
  return 0;
}

int run_search(SearchArgs a) {
  const search::IndexDir dir = search::read_index_dir(a.index);
  if (a.encoder.model.empty()) a.encoder.model = dir.info.model;
  if (!a.queries_file.empty()) {
    LineReader reader(a.queries_file);
    for (std::string line; reader.next(line);)
      if (!line.empty()) a.queries.push_back(std::move(line));
  }
  if (a.queries.empty()) fail(ErrorCode::Usage, "no query: give queries as arguments or --queries FILE");
  for (const auto& q : a.queries) unicode::require_utf8(q, "query");
  auto encoder = load_chosen_encoder(a.encoder);
  serve::EmbeddingModel model = embedding_model(*encoder, a.encoder);
  search::check_same_model(dir.info, model.embed({search::kProbeSentence}).at(0), a.encoder.model, model.dtype);
  const auto hits = dir.index.search(model.embed(a.queries), a.k);
  for (std::size_t q = 0; q < hits.size(); ++q)
    for (std::size_t r = 0; r < hits[q].size(); ++r) {
      const auto p = static_cast<std::size_t>(hits[q][r].position);
      std::cout << nlohmann::json{{"query", a.queries[q]}, {"rank", r + 1}, {"id", dir.ids[p]}, {"score", hits[q][r].score}, {"text", dir.texts[p]}}.dump()
                << '\n';
    }
  std::cout.flush();
  return 0;
}

}  // namespace

void register_index(CLI::App& root, ExitCode& rc) {
  auto* index = root.add_subcommand("index", "Build a FAISS index of a corpus for rankemb search / serve -i");
  index->require_subcommand(1);
  auto a = std::make_shared<IndexArgs>();
  auto* build = index->add_subcommand("build", "Embed a corpus (one text per line) and index it");
  add_encoder_options(build, a->encoder, true);
  build->add_option("corpus", a->corpus, "Corpus file, one text per line (empty lines skipped; ids are line numbers)")->required();
  build->add_option("-o,--output", a->output, "Index directory to write")->required();
  build->add_option("--kind", a->settings.kind, "flat (exact) or hnsw (approximate; recall@10 is measured and recorded)")
      ->check(CLI::IsMember({"flat", "hnsw"}));
  build->add_option("--hnsw-m", a->settings.hnsw_m, "HNSW graph degree")->check(in_range(2, 512));
  build->add_option("--ef-construction", a->settings.ef_construction, "HNSW build breadth")->check(in_range(1, 4096));
  build->add_option("--ef-search", a->settings.ef_search, "HNSW search breadth")->check(in_range(1, 4096));
  build->add_flag("--overwrite", a->overwrite, "Replace an existing index directory");
  build->callback([a, &rc] { rc = run_index_build(*a); });
}

void register_search(CLI::App& root, ExitCode& rc) {
  auto a = std::make_shared<SearchArgs>();
  auto* cmd = root.add_subcommand("search", "Top-k nearest texts of an index for each query (JSONL on stdout)");
  cmd->add_option("-i,--index", a->index, "Index directory (rankemb index build)")->required();
  add_encoder_options(cmd, a->encoder, false);
  cmd->add_option("queries", a->queries, "Query texts");
  cmd->add_option("--queries", a->queries_file, "File of queries, one per line ('-' = stdin)");
  cmd->add_option("-k", a->k, "Results per query")->check(in_range(1, 10000));
  cmd->callback([a, &rc] { rc = run_search(*a); });
}

}  // namespace rankemb::cli
