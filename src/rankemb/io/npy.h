// rankemb::io .npy writing: the NumPy format version 1.0 (magic "\x93NUMPY", version 1.0, a
// little-endian u16 header length, then a Python-literal dict padded with spaces and a newline so
// that the data starts at a multiple of 64 bytes, as numpy itself writes it), for float32 matrices
// in C order. No libtorch here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace rankemb::io {

// The bytes before the data: magic, version, length and the padded header dict, e.g. for shape
// {2, 3}: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }". `descr` is a numpy type
// string ("<f4"). Throws Error(Other) for a negative dimension.
std::string npy_header(std::span<const std::int64_t> shape, std::string_view descr = "<f4");

// Writes `data` (row-major, product(shape) floats) to `path` atomically (io::write_atomic).
// Throws Error(Other) when data.size() does not match the shape.
void write_npy(const std::filesystem::path& path, std::span<const float> data, std::span<const std::int64_t> shape);

}  // namespace rankemb::io
