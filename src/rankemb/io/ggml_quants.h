// rankemb::io ggml tensor types: the one list of the ggml type codes GGUF files use (name, block
// size, bytes per block) and dequantization of the block formats to float32, bit-identical to
// gguf-py's `gguf.quants.dequantize` (the reference its fixture test compares against):
// F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
// Every product and sum is rounded to float32 in the reference's order (this file is compiled
// without FMA contraction), so a dequantized model is the same model gguf-py and transformers see.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace rankemb::io {

struct GgmlTypeInfo {
  std::uint32_t code = 0;
  std::string_view name;       // "Q4_1", "F32", ...
  std::uint32_t block_size = 1;  // elements per block
  std::uint32_t type_size = 4;   // bytes per block
  bool dequantizable = false;    // dequantize() handles it
};

// nullptr for a code the table does not know.
const GgmlTypeInfo* ggml_type_info(std::uint32_t code);
// The name of a code, or "type <n>" for an unknown one.
std::string ggml_type_name(std::uint32_t code);

// Decodes `src` (whole blocks of type `info`) into `dst`, which must hold exactly
// src.size() / type_size * block_size floats. Throws Error(ModelFormat) naming `what` when the
// type is not dequantizable or the sizes disagree.
void dequantize(const GgmlTypeInfo& info, std::span<const std::byte> src, std::span<float> dst, std::string_view what);

}  // namespace rankemb::io
