// The --device vocabulary (src/rankemb/util/device.h): every accepted spelling, and the refusals.
#include "rankemb/util/device.h"

#include <gtest/gtest.h>

#include "rankemb/util/error.h"

namespace {

using rankemb::Device;

TEST(Device, ParsesAndNames) {
  EXPECT_EQ(rankemb::parse_device("cpu"), Device{});
  EXPECT_EQ(rankemb::parse_device("cuda"), (Device{Device::Kind::Cuda, 0}));
  EXPECT_EQ(rankemb::parse_device("cuda:3"), (Device{Device::Kind::Cuda, 3}));
  EXPECT_EQ(rankemb::device_name(rankemb::parse_device("cuda")), "cuda:0");
  EXPECT_EQ(rankemb::device_name(rankemb::parse_device("cuda:12")), "cuda:12");
  EXPECT_EQ(rankemb::device_name(Device{}), "cpu");
}

TEST(Device, RefusesOthersNamingTheOption) {
  for (const char* bad : {"", "CPU", "gpu", "cuda:", "cuda:-1", "cuda:1x", "cuda:1024", "cuda:0:1", "mps"}) {
    try {
      rankemb::parse_device(bad, "--device");
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const rankemb::Error& e) {
      EXPECT_EQ(e.code(), rankemb::ErrorCode::Usage);
      EXPECT_NE(std::string(e.what()).find("--device \"" + std::string(bad) + "\""), std::string::npos) << e.what();
    }
  }
}

}  // namespace
