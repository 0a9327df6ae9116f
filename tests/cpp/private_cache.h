// Included by a test program that compiles: its kernels go to a private cache directory,
// created for the run and removed after it, so a test never reads or writes the user's cache.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>

#include "toolchain/toolchain.h"

namespace tilejit::testing {

class PrivateCache : public ::testing::Environment {
 public:
  void SetUp() override { ::setenv("TILELANG_CACHE_DIR", dir_.path().c_str(), 1); }

 private:
  detail::TempDir dir_{"tilejit-test-cache"};
};

// inline: one environment per test program, however many of its files include this.
inline const auto* const kPrivateCache = ::testing::AddGlobalTestEnvironment(new PrivateCache);

}  // namespace tilejit::testing
