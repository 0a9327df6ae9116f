// Toolchain fingerprints recorded in the disk cache (src/cache/toolchain_record.h): reused by
// a later call only while every file they came from is unchanged.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "cache/disk_cache.h"
#include "cache/header_hashes.h"
#include "cache/toolchain_record.h"
#include "cuda/nvrtc.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

namespace fs = std::filesystem;
using detail::recorded_fingerprint;
using detail::toolchain_probes;
using detail::ToolchainProbe;

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A fake compiler whose --version prints `version`.
void write_compiler(const fs::path& path, const std::string& version) {
  write_text(path, "#!/bin/sh\necho \"fakecc " + version + "\"\n");
  fs::permissions(path, fs::perms::owner_all);
}

// Waits out HeaderHashes::kTrustAfterNs, after which files written before are old enough to be
// recorded.
void let_files_age() {
  std::this_thread::sleep_for(std::chrono::nanoseconds(detail::HeaderHashes::kTrustAfterNs) +
                              std::chrono::milliseconds(200));
}

class ToolchainRecord : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("TILELANG_CACHE_DIR", (dir_.path() / "cache").c_str(), 1);
    ::unsetenv("TILELANG_DISABLE_CACHE");
    compiler_ = dir_.path() / "fakecc";
    write_compiler(compiler_, "1.0");
    // A selector no other test (or earlier run) has used.
    selector_ = "test|" + dir_.path().string();
  }
  void TearDown() override { ::unsetenv("TILELANG_CACHE_DIR"); }

  // The fingerprint the way a backend probes it: runs the compiler.
  std::string fingerprint() {
    return recorded_fingerprint(selector_, [&] {
      const detail::ProcessResult r =
          detail::run_process({compiler_.string(), "--version"}, std::chrono::seconds(30));
      return ToolchainProbe{r.output, {compiler_.string(), (dir_.path() / "absent.h").string()}};
    });
  }

  fs::path record_dir() const {
    return dir_.path() / "cache" / detail::DiskCache::kLayoutVersion /
           detail::DiskCache::kToolchainDir;
  }
  std::vector<fs::path> records() const {
    std::vector<fs::path> found;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(record_dir(), ec))
      found.push_back(entry.path());
    return found;
  }

  detail::TempDir dir_{"tilejit-toolchain-record"};
  fs::path compiler_;
  std::string selector_;
};

TEST_F(ToolchainRecord, ReusedWhileTheCompilerIsUnchanged) {
  let_files_age();
  const uint64_t before = toolchain_probes();
  EXPECT_EQ(fingerprint(), "fakecc 1.0\n");
  EXPECT_EQ(toolchain_probes(), before + 1);
  ASSERT_EQ(records().size(), 1u);
  EXPECT_EQ(fingerprint(), "fakecc 1.0\n");
  EXPECT_EQ(toolchain_probes(), before + 1) << "an unchanged toolchain was probed again";
}

TEST_F(ToolchainRecord, ChangedCompilerIsProbedAgain) {
  let_files_age();
  EXPECT_EQ(fingerprint(), "fakecc 1.0\n");
  write_compiler(compiler_, "2.0");  // same size: only the times and contents differ
  const uint64_t before = toolchain_probes();
  EXPECT_EQ(fingerprint(), "fakecc 2.0\n");
  EXPECT_EQ(toolchain_probes(), before + 1);
}

TEST_F(ToolchainRecord, CompilerReplacedByAnotherFileIsProbedAgain) {
  let_files_age();
  EXPECT_EQ(fingerprint(), "fakecc 1.0\n");
  const fs::path other = dir_.path() / "othercc";
  write_compiler(other, "3.0");
  fs::rename(other, compiler_);  // another inode at the same path
  EXPECT_EQ(fingerprint(), "fakecc 3.0\n");
}

TEST_F(ToolchainRecord, PathThatAppearsIsProbedAgain) {
  let_files_age();
  EXPECT_EQ(fingerprint(), "fakecc 1.0\n");
  write_text(dir_.path() / "absent.h", "now here\n");
  const uint64_t before = toolchain_probes();
  (void)fingerprint();
  EXPECT_EQ(toolchain_probes(), before + 1);
}

TEST_F(ToolchainRecord, RecentlyChangedFilesAreNotRecorded) {
  // The compiler was written just now: a change within the same timestamp tick could follow
  // unseen, so the probe is not recorded and the next call probes again.
  const uint64_t before = toolchain_probes();
  EXPECT_EQ(fingerprint(), "fakecc 1.0\n");
  EXPECT_TRUE(records().empty());
  EXPECT_EQ(fingerprint(), "fakecc 1.0\n");
  EXPECT_EQ(toolchain_probes(), before + 2);
}

TEST_F(ToolchainRecord, CorruptRecordIsIgnoredAndRewritten) {
  let_files_age();
  EXPECT_EQ(fingerprint(), "fakecc 1.0\n");
  ASSERT_EQ(records().size(), 1u);
  const fs::path record = records().front();
  for (const std::string& garbage :
       {std::string("{\"format\": \"tilejit.toolchain/1\", \"files\": 7"), std::string("\x01\x02"),
        std::string("{\"format\": \"tilejit.toolchain/1\", \"selector\": \"x\"}")}) {
    write_text(record, garbage);
    ::testing::internal::CaptureStderr();
    const uint64_t before = toolchain_probes();
    EXPECT_EQ(fingerprint(), "fakecc 1.0\n");
    const std::string warnings = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(warnings.find("removing broken toolchain record"), std::string::npos) << warnings;
    EXPECT_EQ(toolchain_probes(), before + 1);
    // Rewritten: the next call trusts it again.
    EXPECT_EQ(fingerprint(), "fakecc 1.0\n");
    EXPECT_EQ(toolchain_probes(), before + 1);
  }
}

TEST_F(ToolchainRecord, ConcurrentWritersLeaveOneWholeRecord) {
  let_files_age();
  std::vector<std::thread> threads;
  std::vector<std::string> seen(8);
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&, i] { seen[i] = fingerprint(); });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& value : seen) EXPECT_EQ(value, "fakecc 1.0\n");
  EXPECT_EQ(records().size(), 1u);  // no staged leftovers under another name
  const uint64_t before = toolchain_probes();
  EXPECT_EQ(fingerprint(), "fakecc 1.0\n");
  EXPECT_EQ(toolchain_probes(), before);
}

TEST_F(ToolchainRecord, DisabledCacheProbesEveryTime) {
  let_files_age();
  ::setenv("TILELANG_DISABLE_CACHE", "1", 1);
  const uint64_t before = toolchain_probes();
  (void)fingerprint();
  (void)fingerprint();
  ::unsetenv("TILELANG_DISABLE_CACHE");
  EXPECT_EQ(toolchain_probes(), before + 2);
  EXPECT_TRUE(records().empty());
}

TEST_F(ToolchainRecord, ClearRemovesRecords) {
  let_files_age();
  (void)fingerprint();
  ASSERT_EQ(records().size(), 1u);
  detail::DiskCache(dir_.path() / "cache").clear();
  EXPECT_TRUE(records().empty());
}

// The cpu backend's selector names the compilers CC / CXX pick as found on PATH, so that
// choosing another compiler is another record.
TEST_F(ToolchainRecord, CpuSelectorFollowsCcAndCxx) {
  const detail::Backend& cpu = detail::backend_named("cpu");
  const char* old_cc = std::getenv("CC");
  const std::string saved = old_cc != nullptr ? old_cc : "";
  ::setenv("CC", compiler_.c_str(), 1);
  const std::optional<std::string> with_fake = cpu.toolchain_selector(detail::Target{"c", ""});
  ::setenv("CC", (dir_.path() / "missing-cc").c_str(), 1);
  const std::optional<std::string> with_missing = cpu.toolchain_selector(detail::Target{"c", ""});
  if (old_cc != nullptr) {
    ::setenv("CC", saved.c_str(), 1);
  } else {
    ::unsetenv("CC");
  }
  ASSERT_TRUE(with_fake.has_value());
  EXPECT_NE(with_fake->find(compiler_.string()), std::string::npos) << *with_fake;
  EXPECT_FALSE(with_missing.has_value()) << "a compiler that is not there has no record";
  EXPECT_NE(cpu.toolchain_selector(detail::Target{"c", ""}), with_fake);
}

// compile() keys through the record: a second process compiling a cpu Program finds the
// fingerprint recorded by the first and runs no probe.
TEST(ToolchainRecordCompile, SecondProcessDoesNotProbe) {
  if (std::getenv("TILEJIT_TEST_RECORD_CHILD") != nullptr) {
    const Program program =
        ProgramBuilder("record_child")
            .source("void f(float* A, int n) { A[0] = (float)n; }\n", Language::kC)
            .tensor("A", "float32", {"n"})
            .launch(Launch("f"))
            .build();
    (void)compile(program);
    std::printf("probes %llu\n", static_cast<unsigned long long>(toolchain_probes()));
    return;
  }
  if (!detail::find_program("cc") || !detail::find_program("c++")) GTEST_SKIP() << "no cc / c++";
  detail::TempDir dir("tilejit-record-compile");
  ::setenv("TILELANG_CACHE_DIR", (dir.path() / "cache").c_str(), 1);
  ::unsetenv("TILELANG_DISABLE_CACHE");
  ::unsetenv("CC");
  ::unsetenv("CXX");
  ::setenv("TILEJIT_TEST_RECORD_CHILD", "1", 1);
  let_files_age();  // this test binary may be younger than kTrustAfterNs
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> outputs;
  for (int run = 0; run < 2; ++run) {
    const detail::ProcessResult r = detail::run_process(
        {self, "--gtest_filter=ToolchainRecordCompile.SecondProcessDoesNotProbe"},
        std::chrono::seconds(120));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    outputs.push_back(r.output);
  }
  ::unsetenv("TILEJIT_TEST_RECORD_CHILD");
  ::unsetenv("TILELANG_CACHE_DIR");
  EXPECT_NE(outputs[0].find("probes 1\n"), std::string::npos) << outputs[0];
  EXPECT_NE(outputs[1].find("probes 0\n"), std::string::npos) << outputs[1];
}

// The nvrtc backend's record lists the libnvrtc it loaded and where a bare soname is found;
// once a libnvrtc is in the process, that one is asked and no record is used.
TEST(ToolchainRecordNvrtc, FilesNameTheLoadedLibraryAndALoadedNvrtcIsAsked) {
  std::string why;
  if (!cuda::nvrtc_available(&why)) GTEST_SKIP() << why;
  const detail::Backend& nvrtc = detail::backend_named("nvrtc");
  const detail::Target target{"cuda", "sm_90"};
  const std::vector<std::string> files = nvrtc.toolchain_files(target);
  const auto lists = [&](const std::string& path) {
    return std::find(files.begin(), files.end(), path) != files.end();
  };
  EXPECT_TRUE(lists(cuda::nvrtc().library_path)) << cuda::nvrtc().library_path;
  EXPECT_TRUE(lists("/etc/ld.so.cache"));
  EXPECT_TRUE(cuda::nvrtc_loaded());
  EXPECT_FALSE(nvrtc.toolchain_selector(target).has_value());
}

}  // namespace
}  // namespace tilejit
