// rankemb::io MappedFile: a file's bytes held in memory for the binary model readers
// (safetensors, GGUF): a private copy-on-write mapping of a regular file, or an owned copy of
// bytes (tests, fuzzing). Copies share one buffer, which lives as long as any copy or
// keep_alive() handle does, so views into it (tensor bytes) stay valid that long.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

namespace rankemb::io {

class MappedFile {
 public:
  // Maps `path` read/write copy-on-write: torch tensors made over the mapping may be modified in
  // place without a crash and without changing the file. Throws Error(Input) naming the path
  // when it cannot be opened, is not a regular file (FIFOs are never waited on) or cannot be mapped.
  static MappedFile open(const std::filesystem::path& path);
  // An owned copy of `bytes`.
  static MappedFile copy_of(std::span<const std::byte> bytes);

  std::span<const std::byte> bytes() const;
  std::shared_ptr<const void> keep_alive() const { return buffer_; }

 private:
  struct Buffer;
  explicit MappedFile(std::shared_ptr<const Buffer> buffer) : buffer_(std::move(buffer)) {}
  std::shared_ptr<const Buffer> buffer_;
};

}  // namespace rankemb::io
