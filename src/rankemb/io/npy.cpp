#include "rankemb/io/npy.h"

#include <bit>

#include "rankemb/io/file.h"
#include "rankemb/util/error.h"

namespace rankemb::io {

static_assert(std::endian::native == std::endian::little, "write_npy writes host floats as '<f4'");

std::string npy_header(std::span<const std::int64_t> shape, std::string_view descr) {
  std::string dims;
  for (auto d : shape) {
    RANKEMB_CHECK(d >= 0, ErrorCode::Other, "npy shape has a negative dimension {}", d);
    dims += fmt::format("{}, ", d);
  }
  // Python tuple syntax: "(5,)" for one dimension, "(2, 3)" for more, "()" for a scalar.
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  else if (shape.size() == 1) dims.pop_back();
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, dims);
  constexpr std::size_t kPrefix = 10;  // magic (6) + version (2) + header length (2)
  std::size_t total = kPrefix + dict.size() + 1;  // + the closing '\n'
  std::size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict.push_back('\n');
  RANKEMB_CHECK(dict.size() <= 0xFFFF, ErrorCode::Other, "npy header of {} bytes does not fit version 1.0", dict.size());
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(dict.size() & 0xFF));
  out.push_back(static_cast<char>(dict.size() >> 8));
  return out + dict;
}

void write_npy(const std::filesystem::path& path, std::span<const float> data, std::span<const std::int64_t> shape) {
  std::uint64_t n = 1;
  for (auto d : shape) n *= static_cast<std::uint64_t>(d < 0 ? 0 : d);
  RANKEMB_CHECK(n == data.size(), ErrorCode::Other, "{}: {} values do not fill the shape ({} expected)", path.string(),
                data.size(), n);
  std::string header = npy_header(shape);
  write_atomic(path, [&](std::ostream& out) {
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size_bytes()));
  });
}

}  // namespace rankemb::io
