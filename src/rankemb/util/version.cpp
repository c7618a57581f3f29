#include "rankemb/util/version.h"

// The library's version string, so binaries can report what they were built from.
namespace rankemb {
const char* version() { return RANKEMB_VERSION; }
}  // namespace rankemb
