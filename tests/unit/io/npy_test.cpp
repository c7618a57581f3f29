// .npy writer: headers checked byte by byte against what numpy 1.24 writes (worked by hand from
// the format spec: 10-byte prefix + dict + spaces + '\n', total a multiple of 64), and a written
// file read back.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "rankemb/io/file.h"
#include "rankemb/io/npy.h"
#include "rankemb/util/error.h"

namespace rankemb::io {
namespace {

std::string expected_header(const std::string& dict) {
  // numpy: len(magic + version + u16 + dict + '\n') rounded up to 64 with spaces before the '\n'.
  std::size_t total = 10 + dict.size() + 1;
  std::size_t padded = (total + 63) / 64 * 64;
  std::string body = dict + std::string(padded - total, ' ') + "\n";
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(body.size() & 0xFF));
  out.push_back(static_cast<char>(body.size() >> 8));
  return out + body;
}

TEST(Npy, MatrixHeaderMatchesNumpy) {
  std::vector<std::int64_t> shape{2, 3};
  std::string h = npy_header(shape);
  // numpy.save(np.zeros((2, 3), np.float32)): header length 0x76 = 118, data at byte 128.
  ASSERT_EQ(h.size(), 128u);
  EXPECT_EQ(h.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(static_cast<unsigned char>(h[8]), 0x76);
  EXPECT_EQ(static_cast<unsigned char>(h[9]), 0x00);
  EXPECT_EQ(h.substr(10, 59), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  EXPECT_EQ(h.back(), '\n');
  EXPECT_EQ(h, expected_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
}

TEST(Npy, VectorAndLargeShapes) {
  std::vector<std::int64_t> one{5};
  EXPECT_EQ(npy_header(one), expected_header("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }"));
  std::vector<std::int64_t> big{1379, 384};
  EXPECT_EQ(npy_header(big), expected_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1379, 384), }"));
  std::vector<std::int64_t> empty{0, 384};
  EXPECT_EQ(npy_header(empty), expected_header("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 384), }"));
  std::vector<std::int64_t> neg{-1, 2};
  EXPECT_THROW(npy_header(neg), Error);
}

TEST(Npy, WritesHeaderThenLittleEndianFloats) {
  auto path = std::filesystem::temp_directory_path() / "rankemb_npy_test.npy";
  std::vector<float> data{1.0f, -2.5f, 0.0f, 3.25f, 1e-8f, 7.0f};
  std::vector<std::int64_t> shape{2, 3};
  write_npy(path, data, shape);
  std::string bytes = read_file(path);
  std::filesystem::remove(path);
  ASSERT_EQ(bytes.size(), 128u + 24u);
  EXPECT_EQ(bytes.substr(0, 128), npy_header(shape));
  // -2.5f = 0xC0200000, little-endian.
  EXPECT_EQ(bytes.substr(132, 4), std::string("\x00\x00\x20\xC0", 4));
  std::vector<float> back(6);
  std::memcpy(back.data(), bytes.data() + 128, 24);
  EXPECT_EQ(back, data);
}

TEST(Npy, SizeMismatchLeavesNoFile) {
  auto path = std::filesystem::temp_directory_path() / "rankemb_npy_bad.npy";
  std::filesystem::remove(path);
  std::vector<float> data{1.0f, 2.0f};
  std::vector<std::int64_t> shape{2, 3};
  EXPECT_THROW(write_npy(path, data, shape), Error);
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace rankemb::io
