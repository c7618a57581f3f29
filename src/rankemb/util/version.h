// The library's version string (CMake's project version), for --version and server /info.
#pragma once

namespace rankemb {
const char* version();
}  // namespace rankemb
