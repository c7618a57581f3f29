// Feeds arbitrary bytes to the safetensors parser as a whole file. Malformed input must end in
// rankemb::Error; anything else (crash, sanitizer report, other exception) is a bug. Accepted
// files are also written back with our writer and re-parsed, which must give the same tensors.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "rankemb/io/safetensors.h"
#include "rankemb/util/error.h"

namespace io = rankemb::io;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::as_bytes(std::span(data, size));
  io::SafetensorsHeader header;
  try {
    header = io::parse_safetensors(bytes, "fuzz");
  } catch (const rankemb::Error&) {
    return 0;
  }
  std::vector<io::TensorToWrite> tensors;
  for (const auto& t : header.tensors) {
    if (io::dtype_is_loadable(t.dtype) && t.numel() < 4096) (void)io::to_float32(t, "fuzz");
    tensors.push_back({t.name, t.dtype, t.shape, t.bytes});
  }
  std::string written = io::serialize_safetensors(tensors, header.metadata);
  auto again = io::parse_safetensors(std::as_bytes(std::span(written.data(), written.size())), "rewritten");
  if (again.tensors.size() != header.tensors.size() || again.metadata != header.metadata) std::abort();
  for (std::size_t i = 0; i < again.tensors.size(); ++i) {
    const auto& a = again.tensors[i];
    const auto& b = header.tensors[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.bytes.size() != b.bytes.size() ||
        !std::equal(a.bytes.begin(), a.bytes.end(), b.bytes.begin()))
      std::abort();
  }
  return 0;
}
