// rankemb::search: nearest-neighbour search over embeddings on FAISS, and the index directory
// `rankemb index build` writes and `rankemb search` / `rankemb serve -i` read:
//   index.faiss   the FAISS index (FAISS's own file format: flat inner product, or HNSW)
//   texts.jsonl   {"id": line number in the corpus, "text": ...}, one per vector, in index order
//   index.json    what built it: model path, the model's embedding of a fixed probe sentence (so
//                 a different model is refused), settings, counts, the approximate index's
//                 recall@10 against exact search
// Vectors are L2-normalized before indexing and querying, so scores are cosine similarities.
// No libtorch: embeddings arrive as float rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace faiss {
struct Index;
}

namespace rankemb::search {

using Rows = std::vector<std::vector<float>>;

// The sentence every index stores the model's embedding of (index.json "probe").
inline constexpr const char* kProbeSentence = "A man is playing a guitar on a stage.";

struct IndexSettings {
  std::string kind = "flat";  // "flat" (exact inner product) or "hnsw" (approximate)
  int hnsw_m = 32;            // HNSW graph degree
  int ef_construction = 80;
  int ef_search = 64;         // HNSW search breadth (recall vs speed)
};

struct Hit {
  std::int64_t position = 0;  // row in the index
  float score = 0;            // cosine similarity
};

// Scales `row` to unit L2 length (a zero row stays zero).
void l2_normalize(std::vector<float>& row);

class VectorIndex {
 public:
  VectorIndex();
  ~VectorIndex();
  VectorIndex(VectorIndex&&) noexcept;
  VectorIndex& operator=(VectorIndex&&) noexcept;

  // Rows must share one width; they are normalized. Throws Error(Usage) for unknown settings.
  static VectorIndex build(Rows rows, const IndexSettings& settings);
  // The k best rows for each query (fewer when the index is smaller), best first.
  std::vector<std::vector<Hit>> search(Rows queries, std::size_t k) const;
  std::size_t size() const;
  std::size_t dim() const;

  void write(const std::filesystem::path& file) const;
  // Throws Error(Input) naming the file when FAISS cannot read it.
  static VectorIndex read(const std::filesystem::path& file, int ef_search);

 private:
  std::unique_ptr<faiss::Index> index_;
};

// Share of the exact top-k that `approx` found, averaged over queries.
double recall_at_k(const std::vector<std::vector<Hit>>& exact, const std::vector<std::vector<Hit>>& approx, std::size_t k);

struct IndexInfo {
  std::string model;                 // the model directory that built it, as given
  std::vector<float> probe;          // the model's embedding of kProbeSentence (normalized)
  IndexSettings settings;
  std::size_t count = 0, dim = 0;
  std::optional<double> recall_at_10;  // approximate kinds only
  std::string corpus;                // the corpus file, as given
  std::string precision;             // what the model ran in: its dtype, or "int8" (--int8); empty
                                     // for indexes written before it was recorded
};

struct IndexDir {
  IndexInfo info;
  VectorIndex index;
  std::vector<std::int64_t> ids;     // corpus line numbers, one per row
  std::vector<std::string> texts;
};

// Writes `dir` atomically (all three files or none).
void write_index_dir(const std::filesystem::path& dir, const IndexDir& index);
// Reads and cross-checks the three files (counts, widths); Error(Input) naming file and field.
IndexDir read_index_dir(const std::filesystem::path& dir);
// Refuses (Error(Usage)) a model whose probe embedding differs from the index's (cosine < 0.999):
// searching an index with another model's vectors returns nonsense without any error. A model
// run with --int8 against an index built without it, or the reverse (`precision` as IndexInfo's),
// is refused first with that said: int8 and float32 vectors of one model have cosine ~0.998.
void check_same_model(const IndexInfo& info, std::vector<float> probe, const std::string& model,
                      const std::string& precision);

}  // namespace rankemb::search
