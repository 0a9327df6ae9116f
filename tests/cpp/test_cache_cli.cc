// `tilejit cache ...` end to end: key, list, info, verify (and --remove-broken), clear.
#include <gtest/gtest.h>

#include <fstream>

#include "cache/disk_cache.h"
#include "cache_test_support.h"

namespace tilejit {
namespace {

namespace fs = std::filesystem;
using testing::axpy_program;
using testing::ScopedCacheDir;

detail::ProcessResult tool(const ScopedCacheDir& cache, std::vector<std::string> args) {
  std::vector<std::string> argv{TILEJIT_TOOL_PATH, "cache", "--dir", cache.root().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return detail::run_process(argv, std::chrono::seconds(120));
}

class CacheCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(TILEJIT_TOOL_PATH).empty()) GTEST_SKIP() << "the tilejit CLI is not built";
    for (int scale : {2, 3})
      keys_.push_back(compile(axpy_program(scale, "", fmt::format("cli_{}", scale))).cache_key());
  }
  ScopedCacheDir cache_;
  std::vector<std::string> keys_;
};

TEST_F(CacheCli, KeyMatchesTheLibrary) {
  const Program program = axpy_program(2, "", "cli_2");
  const fs::path json = cache_.scratch() / "program.json";
  std::ofstream(json) << program.to_json();
  detail::ProcessResult result = tool(cache_, {"key", json.string()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, keys_[0] + "\n");
}

TEST_F(CacheCli, ListAndInfo) {
  detail::ProcessResult list = tool(cache_, {"list"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  for (const std::string& key : keys_)
    EXPECT_NE(list.output.find(key.substr(0, 16)), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("cli_3"), std::string::npos) << list.output;
  detail::ProcessResult info = tool(cache_, {"info"});
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("entries:    2"), std::string::npos) << info.output;
}

TEST_F(CacheCli, VerifyFindsAndRemovesBrokenEntries) {
  detail::ProcessResult clean = tool(cache_, {"verify"});
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  fs::resize_file(cache_.entry(keys_[1]) / "entry", 1000);
  detail::ProcessResult broken = tool(cache_, {"verify"});
  EXPECT_EQ(broken.exit_code, 1) << broken.output;
  EXPECT_NE(broken.output.find(keys_[1] + ": entry holds 1000 bytes where its header lists"),
            std::string::npos)
      << broken.output;
  detail::ProcessResult fixed = tool(cache_, {"verify", "--remove-broken"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.output;
  EXPECT_FALSE(fs::exists(cache_.entry(keys_[1])));
  EXPECT_TRUE(fs::exists(cache_.entry(keys_[0])));
}

TEST_F(CacheCli, UnsafeDirectoryIsAnError) {
  fs::permissions(cache_.root(), fs::perms::others_write, fs::perm_options::add);
  detail::ProcessResult result = tool(cache_, {"list"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("writable by group or others"), std::string::npos) << result.output;
}

TEST_F(CacheCli, Clear) {
  detail::ProcessResult result = tool(cache_, {"clear"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("removed 2 entries"), std::string::npos) << result.output;
  EXPECT_TRUE(detail::DiskCache(cache_.root()).list(false).empty());
}

}  // namespace
}  // namespace tilejit
