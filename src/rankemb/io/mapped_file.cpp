#include "rankemb/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "rankemb/util/error.h"

namespace rankemb::io {

// A private mapping or an owned copy.
struct MappedFile::Buffer {
  const std::byte* data = nullptr;
  std::size_t size = 0;
  void* mapping = nullptr;  // non-null when mmapped
  std::vector<std::byte> owned;

  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (mapping) munmap(mapping, size);
  }
};

MappedFile MappedFile::open(const std::filesystem::path& path) {
  auto buffer = std::make_shared<Buffer>();
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever; the fstat below
  // refuses anything but a regular file (where the flag changes nothing).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(ErrorCode::Input, "{}: cannot open file: {}", path.string(), std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(ErrorCode::Input, "{}: not a regular file", path.string());
  }
  buffer->size = static_cast<std::size_t>(st.st_size);
  if (buffer->size > 0) {
    void* p = mmap(nullptr, buffer->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      fail(ErrorCode::Input, "{}: cannot map file: {}", path.string(), std::strerror(err));
    }
    buffer->mapping = p;
    buffer->data = static_cast<const std::byte*>(p);
  }
  ::close(fd);
  return MappedFile(std::move(buffer));
}

MappedFile MappedFile::copy_of(std::span<const std::byte> bytes) {
  auto buffer = std::make_shared<Buffer>();
  buffer->owned.assign(bytes.begin(), bytes.end());
  buffer->data = buffer->owned.data();
  buffer->size = buffer->owned.size();
  return MappedFile(std::move(buffer));
}

std::span<const std::byte> MappedFile::bytes() const { return {buffer_->data, buffer_->size}; }

}  // namespace rankemb::io
