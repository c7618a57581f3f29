// Block decoders, written to follow gguf-py's numpy formulas operation for operation (see the
// header): each scale is first multiplied into a float32 (d * sc), then applied to the quant.
#include "rankemb/io/ggml_quants.h"

#include <array>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "rankemb/io/safetensors.h"
#include "rankemb/util/error.h"

namespace rankemb::io {

namespace {

constexpr std::uint32_t kQK = 256;  // elements per K-quant super-block

// Codes and sizes as ggml.h / gguf-py's GGML_QUANT_SIZES define them.
constexpr std::array<GgmlTypeInfo, 31> kTypes{{
    {0, "F32", 1, 4, true},        {1, "F16", 1, 2, true},        {2, "Q4_0", 32, 18, true},
    {3, "Q4_1", 32, 20, true},     {6, "Q5_0", 32, 22, true},     {7, "Q5_1", 32, 24, true},
    {8, "Q8_0", 32, 34, true},     {9, "Q8_1", 32, 36, false},    {10, "Q2_K", kQK, 84, true},
    {11, "Q3_K", kQK, 110, true},  {12, "Q4_K", kQK, 144, true},  {13, "Q5_K", kQK, 176, true},
    {14, "Q6_K", kQK, 210, true},  {15, "Q8_K", kQK, 292, false}, {16, "IQ2_XXS", kQK, 66, false},
    {17, "IQ2_XS", kQK, 74, false}, {18, "IQ3_XXS", kQK, 98, false}, {19, "IQ1_S", kQK, 50, false},
    {20, "IQ4_NL", 32, 18, false}, {21, "IQ3_S", kQK, 110, false}, {22, "IQ2_S", kQK, 82, false},
    {23, "IQ4_XS", kQK, 136, false}, {24, "I8", 1, 1, false},     {25, "I16", 1, 2, false},
    {26, "I32", 1, 4, false},      {27, "I64", 1, 8, false},      {28, "F64", 1, 8, false},
    {29, "IQ1_M", kQK, 56, false}, {30, "BF16", 1, 2, true},      {34, "TQ1_0", kQK, 54, false},
    {35, "TQ2_0", kQK, 66, false},
}};

using Bytes = const std::uint8_t*;

float f16(Bytes p) {
  std::uint16_t bits;
  std::memcpy(&bits, p, 2);
  return half_to_float(bits);
}

std::uint32_t u32(Bytes p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Q4_0 / Q4_1 / Q5_0 / Q5_1: 32 values; element j < 16 is the low nibble of qs[j], element
// j >= 16 the high nibble of qs[j - 16]; the 5-bit types add bit j of the u32 qh as bit 4.
template <bool kHasMin, bool kFiveBit>
void legacy_block(Bytes b, float* out) {
  const float d = f16(b);
  const float m = kHasMin ? f16(b + 2) : 0.0f;
  Bytes p = b + (kHasMin ? 4 : 2);
  const std::uint32_t qh = kFiveBit ? u32(p) : 0;
  Bytes qs = p + (kFiveBit ? 4 : 0);
  for (int j = 0; j < 32; ++j) {
    int q = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
    if (kFiveBit) q |= static_cast<int>((qh >> j) & 1u) << 4;
    if (kHasMin) {
      out[j] = d * static_cast<float>(q) + m;
    } else {
      const int offset = kFiveBit ? 16 : 8;
      out[j] = d * static_cast<float>(q - offset);
    }
  }
}

void q8_0_block(Bytes b, float* out) {
  const float d = f16(b);
  for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(static_cast<std::int8_t>(b[2 + j])) * d;
}

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin. Element
// h*128 + s*32 + l holds bits 2s..2s+1 of qs[h*32 + l]; its group of 16 picks the scale.
void q2_k_block(Bytes b, float* out) {
  Bytes scales = b, qs = b + 16;
  const float d = f16(b + 80), dmin = f16(b + 82);
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) {
        const int pos = h * 128 + s * 32 + l;
        const float dl = d * static_cast<float>(scales[pos / 16] & 0x0F);
        const float ml = dmin * static_cast<float>(scales[pos / 16] >> 4);
        out[pos] = dl * static_cast<float>((qs[h * 32 + l] >> (2 * s)) & 3) - ml;
      }
}

// Q3_K: hmask[32], qs[64], scales[12] (sixteen 6-bit scales, biased by 32), d. The low two
// bits come as in Q2_K; bit j of hmask[l] (j = pos / 32) *clear* subtracts 4.
void q3_k_block(Bytes b, float* out) {
  Bytes hmask = b, qs = b + 32, sc = b + 96;
  const float d = f16(b + 108);
  std::array<float, 16> dl{};
  for (int i = 0; i < 16; ++i) {
    const int low = i < 8 ? (sc[i] & 0x0F) : (sc[i - 8] >> 4);
    const int high = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
    dl[i] = d * static_cast<float>(static_cast<std::int8_t>(low | (high << 4)) - 32);
  }
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) {
        const int pos = h * 128 + s * 32 + l;
        const int low = (qs[h * 32 + l] >> (2 * s)) & 3;
        const int high_clear = ((hmask[l] >> (pos / 32)) & 1) ^ 1;
        out[pos] = dl[pos / 16] * static_cast<float>(low - (high_clear << 2));
      }
}

// The eight 6-bit (scale, min) pairs of Q4_K / Q5_K, packed in 12 bytes.
void k_scale_min(Bytes s, std::array<int, 8>& sc, std::array<int, 8>& mn) {
  for (int i = 0; i < 4; ++i) {
    sc[i] = s[i] & 0x3F;
    mn[i] = s[4 + i] & 0x3F;
    sc[4 + i] = (s[8 + i] & 0x0F) | ((s[i] >> 2) & 0x30);
    mn[4 + i] = (s[8 + i] >> 4) | ((s[4 + i] >> 2) & 0x30);
  }
}

// Q4_K (kFiveBit = false): d, dmin, scales[12], qs[128]. Q5_K adds qh[32] before qs. Group
// g = 2c + s of 32 elements takes nibble s of qs[c*32 + l] (plus bit g of qh[l] as bit 4).
template <bool kFiveBit>
void q45_k_block(Bytes b, float* out) {
  const float d = f16(b), dmin = f16(b + 2);
  std::array<int, 8> sc{}, mn{};
  k_scale_min(b + 4, sc, mn);
  Bytes qh = b + 16;
  Bytes qs = b + (kFiveBit ? 48 : 16);
  for (int g = 0; g < 8; ++g) {
    const float dg = d * static_cast<float>(sc[g]);
    const float mg = dmin * static_cast<float>(mn[g]);
    for (int l = 0; l < 32; ++l) {
      int q = (qs[(g / 2) * 32 + l] >> (4 * (g % 2))) & 0x0F;
      if (kFiveBit) q |= ((qh[l] >> g) & 1) << 4;
      out[g * 32 + l] = dg * static_cast<float>(q) - mg;
    }
  }
}

// Q6_K: ql[128], qh[64], scales[16] (int8), d. Element h*128 + s*64 + l (l < 64) takes nibble s
// of ql[h*64 + l]; its bits 4..5 are bits 2j..2j+1 of qh[h*32 + l%32], j = (s*64 + l) / 32.
void q6_k_block(Bytes b, float* out) {
  Bytes ql = b, qh = b + 128, scales = b + 192;
  const float d = f16(b + 208);
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 128; ++k) {
      const int s = k / 64, l = k % 64, j = k / 32;
      const int low = (ql[h * 64 + l] >> (4 * s)) & 0x0F;
      const int high = (qh[h * 32 + k % 32] >> (2 * j)) & 3;
      const int pos = h * 128 + k;
      const float dg = d * static_cast<float>(static_cast<std::int8_t>(scales[pos / 16]));
      out[pos] = dg * static_cast<float>(static_cast<std::int8_t>(low | (high << 4)) - 32);
    }
}

using BlockFn = void (*)(Bytes, float*);

BlockFn block_decoder(std::uint32_t code) {
  switch (code) {
    case 2: return legacy_block<false, false>;
    case 3: return legacy_block<true, false>;
    case 6: return legacy_block<false, true>;
    case 7: return legacy_block<true, true>;
    case 8: return q8_0_block;
    case 10: return q2_k_block;
    case 11: return q3_k_block;
    case 12: return q45_k_block<false>;
    case 13: return q45_k_block<true>;
    case 14: return q6_k_block;
    default: return nullptr;
  }
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(std::uint32_t code) {
  for (const auto& t : kTypes)
    if (t.code == code) return &t;
  return nullptr;
}

std::string ggml_type_name(std::uint32_t code) {
  const GgmlTypeInfo* t = ggml_type_info(code);
  return t ? std::string(t->name) : fmt::format("type {}", code);
}

void dequantize(const GgmlTypeInfo& info, std::span<const std::byte> src, std::span<float> dst, std::string_view what) {
  if (!info.dequantizable)
    fail(ErrorCode::ModelFormat, "{}: tensor type {} cannot be dequantized (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K)",
         what, info.name);
  const std::size_t blocks = src.size() / info.type_size;
  if (src.size() % info.type_size != 0 || dst.size() != blocks * info.block_size)
    fail(ErrorCode::ModelFormat, "{}: {} bytes of {} do not make {} values", what, src.size(), info.name, dst.size());
  if (blocks == 0) return;  // a tensor with a zero dimension; its spans may hold null pointers
  const auto* in = reinterpret_cast<Bytes>(src.data());
  float* out = dst.data();
  switch (info.code) {
    case 0: std::memcpy(out, in, src.size()); return;
    case 1:
      for (std::size_t i = 0; i < blocks; ++i) out[i] = f16(in + 2 * i);
      return;
    case 30:
      for (std::size_t i = 0; i < blocks; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, in + 2 * i, 2);
        out[i] = bfloat16_to_float(bits);
      }
      return;
    default: break;
  }
  const BlockFn decode = block_decoder(info.code);
  for (std::size_t i = 0; i < blocks; ++i) decode(in + i * info.type_size, out + i * info.block_size);
}

}  // namespace rankemb::io
