// The library's shared vocabulary: the few types and functions that several stages speak of and
// none of them owns. Needs no libtorch, so every folder may include it without pulling in
// another folder only to borrow a type.
//
// - Dtype: the compute dtype of a model (float32, or bfloat16 where the CPU has matrix units).
//   Every command's --dtype and every library option spell it through parse_dtype/dtype_name;
//   models/ maps it to libtorch's ScalarType in one place (models/safetensors_torch.h).
// - EmbedFn: texts in, one vector per text out. How an encoder reaches the evaluators, the chain
//   quality report and the lexical generator without them depending on models/.
// - request_seed: the per-request random seed of a generation backend, a pure function of
//   (run seed, chain id, step), so that a chain does not depend on which other requests shared
//   its batch, or on whether the run was resumed or sharded.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace rankemb {

enum class Dtype { Float32, BFloat16 };

// "float32" or "bfloat16".
std::string_view dtype_name(Dtype dtype);
// Accepts "float32" / "fp32" / "f32" and "bfloat16" / "bf16"; throws Error(Usage) naming `what`
// (the option being set, e.g. "dtype") and the accepted names for anything else.
Dtype parse_dtype(std::string_view name, std::string_view what = "dtype");
// Whether this CPU multiplies bfloat16 natively (x86 AVX-512 BF16, which every AMX CPU has too).
// Without it libtorch emulates bfloat16 matrix products, far slower than float32 (measured on a
// 2-core AVX2 EPYC: SmolLM2 decoding 1.2 tokens/s in bfloat16 against 40 in float32).
bool cpu_has_fast_bfloat16();
// bfloat16 where the CPU has it natively, float32 elsewhere: the default of commands that would
// rather run bfloat16.
Dtype fastest_training_dtype();
// The CPUs this process may run on (its affinity mask; the hardware count where there is none),
// at least 1: what "all cores" means for --threads 0 and the local ranks' share.
int usable_cpu_cores();

// Rows in input order; every row has the same length.
using EmbedFn = std::function<std::vector<std::vector<float>>(const std::vector<std::string>&)>;

// FNV-1a 64 of `bytes` as 16 lowercase hex digits: a change detector for inputs a run depends on
// (seed files, chains), not a security hash.
std::string fnv1a64_hex(std::string_view bytes);

// splitmix64 of x (Steele et al.): a fast, well-mixed 64-bit hash.
std::uint64_t splitmix64(std::uint64_t x);
// splitmix64(splitmix64(splitmix64(seed) ^ chain_id) ^ step).
std::uint64_t request_seed(std::uint64_t seed, std::uint64_t chain_id, std::int64_t step);

}  // namespace rankemb
