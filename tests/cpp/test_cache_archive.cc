// `tilejit cache pack` / `unpack` and `cache stats`: an archive of the cache unpacked into a
// fresh cache directory hits for every entry; a damaged archive stores nothing.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "cache/cache_archive.h"
#include "cache/disk_cache.h"
#include "cache_test_support.h"
#include "compile/compile.h"

namespace tilejit {
namespace {

namespace fs = std::filesystem;
using detail::CompileSource;
using detail::DiskCache;
using testing::axpy_program;
using testing::expect_axpy_correct;
using testing::ScopedCacheDir;

const std::vector<int> kScales = {3, 8, 13, 21};

detail::ProcessResult tool(const fs::path& root, std::vector<std::string> args) {
  std::vector<std::string> argv{TILEJIT_TOOL_PATH, "cache", "--dir", root.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return detail::run_process(argv, std::chrono::seconds(120));
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Every scale compiles from the disk cache alone, correctly.
void expect_all_hit(const std::vector<int>& scales) {
  for (int scale : scales) {
    detail::MemoryCache::global().clear();
    detail::CompileOutcome outcome = detail::compile_with_outcome(axpy_program(scale), {});
    EXPECT_EQ(outcome.source, CompileSource::kDiskCache) << "scale " << scale;
    expect_axpy_correct(outcome.kernel, scale);
  }
}

TEST(CacheArchive, RoundTripIntoAFreshCacheHitsForEveryEntry) {
  std::string archive;
  {
    ScopedCacheDir source;
    for (int scale : kScales) (void)compile(axpy_program(scale));
    archive = detail::pack_cache_entries(DiskCache(source.root()), {});
  }
  ScopedCacheDir fresh;
  const std::vector<std::string> keys =
      detail::unpack_cache_entries(DiskCache(fresh.root()), archive);
  EXPECT_EQ(keys.size(), kScales.size());
  expect_all_hit(kScales);
}

TEST(CacheArchive, SelectedEntriesOnly) {
  ScopedCacheDir source;
  for (int scale : kScales) (void)compile(axpy_program(scale));
  const std::string key = cache_key(axpy_program(kScales[1]));
  const std::string archive = detail::pack_cache_entries(DiskCache(source.root()), {key});
  ScopedCacheDir fresh;
  EXPECT_EQ(detail::unpack_cache_entries(DiskCache(fresh.root()), archive),
            std::vector<std::string>{key});
  EXPECT_EQ(DiskCache(fresh.root()).list(true).size(), 1u);
  expect_all_hit({kScales[1]});
  // A key that is not in the cache is an error naming it.
  const std::string missing = cache_key(axpy_program(999));
  try {
    (void)detail::pack_cache_entries(DiskCache(source.root()), {missing});
    FAIL() << "packed a missing entry";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}

TEST(CacheArchive, DamagedArchivesStoreNothing) {
  std::string archive;
  {
    ScopedCacheDir source;
    for (int scale : kScales) (void)compile(axpy_program(scale));
    archive = detail::pack_cache_entries(DiskCache(source.root()), {});
  }
  ScopedCacheDir fresh;
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    std::string bad = archive;
    const size_t at = std::uniform_int_distribution<size_t>(0, bad.size() - 1)(rng);
    bad[at] = static_cast<char>(bad[at] ^ (1 + trial));
    EXPECT_THROW((void)detail::unpack_cache_entries(DiskCache(fresh.root()), bad), Error)
        << "byte " << at;
  }
  EXPECT_THROW((void)detail::unpack_cache_entries(DiskCache(fresh.root()),
                                                  archive.substr(0, archive.size() / 2)),
               Error);
  EXPECT_THROW((void)detail::unpack_cache_entries(DiskCache(fresh.root()), "TJPK"), Error);
  EXPECT_TRUE(DiskCache(fresh.root()).list(false).empty());
}

TEST(CacheArchive, CommandLine) {
  if (std::string(TILEJIT_TOOL_PATH).empty()) GTEST_SKIP() << "the tilejit CLI is not built";
  ScopedCacheDir source;
  for (int scale : kScales) (void)compile(axpy_program(scale));
  const fs::path file = source.scratch() / "kernels.tjpk";
  detail::ProcessResult packed = tool(source.root(), {"pack", file.string()});
  ASSERT_EQ(packed.exit_code, 0) << packed.output;
  EXPECT_NE(packed.output.find("packed 4 entries"), std::string::npos) << packed.output;

  ScopedCacheDir fresh;
  detail::ProcessResult unpacked = tool(fresh.root(), {"unpack", file.string()});
  ASSERT_EQ(unpacked.exit_code, 0) << unpacked.output;
  EXPECT_NE(unpacked.output.find("unpacked 4 entries"), std::string::npos) << unpacked.output;
  expect_all_hit(kScales);

  std::string bad = read_all(file);
  bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 1);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bad;
  ScopedCacheDir third;
  detail::ProcessResult refused = tool(third.root(), {"unpack", file.string()});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("does not match"), std::string::npos) << refused.output;
}

TEST(CacheStats, CountsOfFinishedProcesses) {
  if (std::string(TILEJIT_TOOL_PATH).empty()) GTEST_SKIP() << "the tilejit CLI is not built";
  ScopedCacheDir cache;
  const fs::path program = cache.scratch() / "program.json";
  std::ofstream(program) << axpy_program(5).to_json();
  // Each `tilejit compile` is a process that records its counts at exit.
  for (int run = 0; run < 3; ++run) {
    detail::ProcessResult compiled = detail::run_process(
        {TILEJIT_TOOL_PATH, "compile", program.string()}, std::chrono::seconds(120));
    ASSERT_EQ(compiled.exit_code, 0) << compiled.output;
  }
  detail::ProcessResult stats = tool(cache.root(), {"stats"});
  ASSERT_EQ(stats.exit_code, 0) << stats.output;
  EXPECT_NE(stats.output.find("disk_hits:       2\n"), std::string::npos) << stats.output;
  EXPECT_NE(stats.output.find("misses:          1\n"), std::string::npos) << stats.output;
  EXPECT_NE(stats.output.find("remote_hits:     0\n"), std::string::npos) << stats.output;
  // Under TILELANG_VERBOSE a process prints its own counts as it exits.
  ::setenv("TILELANG_VERBOSE", "1", 1);
  detail::ProcessResult verbose = detail::run_process(
      {TILEJIT_TOOL_PATH, "compile", program.string()}, std::chrono::seconds(120));
  ::unsetenv("TILELANG_VERBOSE");
  ASSERT_EQ(verbose.exit_code, 0) << verbose.output;
  EXPECT_NE(verbose.output.find("tilejit: cache: disk_hits=1 remote_hits=0 misses=0 "
                                "remote_rejected=0 leases_waited=0 remote_failures=0\n"),
            std::string::npos)
      << verbose.output;
  ASSERT_EQ(tool(cache.root(), {"stats", "--reset"}).exit_code, 0);
  EXPECT_NE(tool(cache.root(), {"stats"}).output.find("misses:          0\n"), std::string::npos);
}

}  // namespace
}  // namespace tilejit
