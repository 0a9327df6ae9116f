// The disk cache under damage and hostile permissions: every case is detected, handled as
// docs/cache.md says, and the kernel still computes the right result.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iterator>
#include <map>
#include <utility>
#include <vector>

#include "cache/cache_entry.h"
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

struct Attempt {
  CompileSource source;
  std::string warnings;
};

// A compile in a "new process": the memory cache is emptied first, so the disk is consulted.
Attempt compile_fresh(const Program& program, int scale) {
  detail::MemoryCache::global().clear();
  ::testing::internal::CaptureStderr();
  detail::CompileOutcome outcome = detail::compile_with_outcome(program, {});
  Attempt attempt{outcome.source, ::testing::internal::GetCapturedStderr()};
  expect_axpy_correct(outcome.kernel, scale);
  return attempt;
}

std::string entry_problem(const ScopedCacheDir& cache, const std::string& key) {
  for (const DiskCache::EntryInfo& info : DiskCache(cache.root()).list(true)) {
    if (info.key == key) return info.problem;
  }
  return "absent";
}

class CacheCorruption : public ::testing::Test {
 protected:
  void SetUp() override {
    program_ = axpy_program(kScale);
    key_ = cache_key(program_);
    Attempt first = compile_fresh(program_, kScale);
    ASSERT_EQ(first.source, CompileSource::kBuilt);
    ASSERT_EQ(entry_problem(cache_, key_), "");
    entry_ = cache_.entry(key_);
    ASSERT_TRUE(fs::exists(entry_file()));
  }

  fs::path entry_file() const { return entry_ / detail::cache_fs::kEntryFile; }

  std::string entry_bytes() const {
    std::ifstream in(entry_file(), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  // Where file `name` lies in the entry file, from its header.
  detail::cache_fs::EntryHeader::File file_in_entry(const std::string& name) const {
    std::string problem;
    const auto header = detail::cache_fs::parse_entry_header(entry_bytes(), &problem);
    EXPECT_TRUE(header) << problem;
    for (const auto& file : header->files) {
      if (file.name == name) return file;
    }
    ADD_FAILURE() << "the entry holds no " << name;
    return {};
  }

  // The entry's files, verified.
  std::map<std::string, std::string> entry_files() const {
    detail::UniqueFd dir(::open(entry_.c_str(), O_RDONLY | O_DIRECTORY));
    detail::cache_fs::Verdict verdict = detail::cache_fs::verify_entry(dir.get(), key_);
    EXPECT_EQ(verdict.problem, "");
    return verdict.files;
  }

  // Replaces the entry file in place, keeping its inode, mode and owner.
  void rewrite_entry(const std::string& bytes) const {
    std::ofstream(entry_file(), std::ios::binary | std::ios::trunc) << bytes;
  }

  void flip_byte(uint64_t offset) const {
    std::fstream file(entry_file(), std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(static_cast<std::streamoff>(offset));
    char byte = 0;
    file.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x40);
    file.seekp(static_cast<std::streamoff>(offset));
    file.write(&byte, 1);
  }

  // The broken entry is removed with a warning, the kernel rebuilt, and the new entry good.
  void expect_rebuilt(const std::string& reason) {
    Attempt attempt = compile_fresh(program_, kScale);
    EXPECT_EQ(attempt.source, CompileSource::kBuilt) << reason;
    EXPECT_NE(attempt.warnings.find("removing broken cache entry"), std::string::npos)
        << attempt.warnings;
    EXPECT_NE(attempt.warnings.find(reason), std::string::npos) << attempt.warnings;
    EXPECT_EQ(entry_problem(cache_, key_), "");
    EXPECT_EQ(compile_fresh(program_, kScale).source, CompileSource::kDiskCache);
  }

  // The entry is refused with a warning and left alone; the kernel is built privately.
  void expect_refused(const std::string& reason) {
    for (int attempt_number = 0; attempt_number < 2; ++attempt_number) {  // never stored over
      Attempt attempt = compile_fresh(program_, kScale);
      EXPECT_EQ(attempt.source, CompileSource::kBuilt);
      EXPECT_NE(attempt.warnings.find("refusing"), std::string::npos) << attempt.warnings;
      EXPECT_NE(attempt.warnings.find(reason), std::string::npos) << attempt.warnings;
    }
    EXPECT_NE(entry_problem(cache_, key_), "");
  }

  static constexpr int kScale = 3;
  ScopedCacheDir cache_;
  Program program_;
  std::string key_;
  fs::path entry_;
};

TEST_F(CacheCorruption, TruncatedEntry) {
  fs::resize_file(entry_file(), fs::file_size(entry_file()) / 2);
  expect_rebuilt("where its header lists");
}

TEST_F(CacheCorruption, AppendedToEntry) {
  std::ofstream(entry_file(), std::ios::app) << " ";
  expect_rebuilt("where its header lists");
}

TEST_F(CacheCorruption, FlippedByteInBinary) {
  flip_byte(file_in_entry("kernel.so").offset + 1000);
  expect_rebuilt("kernel.so does not match");
}

TEST_F(CacheCorruption, FlippedByteInHeader) {
  flip_byte(3);  // in "tilejit.cache-entry/2"
  expect_rebuilt("header is malformed");
}

// compile() has the Program its key covers and does not read the entry's program.json, so an
// edit there changes nothing it uses; every reader of that file still refuses it.
TEST_F(CacheCorruption, EditedProgramJson) {
  flip_byte(file_in_entry("program.json").offset + 10);
  Attempt attempt = compile_fresh(program_, kScale);
  EXPECT_EQ(attempt.source, CompileSource::kDiskCache);
  EXPECT_EQ(attempt.warnings, "");
  EXPECT_NE(entry_problem(cache_, key_).find("program.json does not match"), std::string::npos);
  try {
    (void)Kernel::load(entry_);
    ADD_FAILURE() << "Kernel::load took an entry whose program.json does not match";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("program.json does not match"), std::string::npos)
        << e.what();
  }
}

TEST_F(CacheCorruption, MissingEntryFile) {
  fs::remove(entry_file());
  expect_rebuilt("entry is missing");
}

// An entry whose header and hashes are consistent but that lacks the binary: complete as a
// file, incomplete as an artifact.
TEST_F(CacheCorruption, EntryWithoutBinary) {
  std::map<std::string, std::string> files = entry_files();
  ASSERT_EQ(files.erase("kernel.so"), 1u);
  rewrite_entry(detail::cache_fs::encode_entry(key_, files));
  expect_rebuilt("'kernel.so' is missing");
}

// A whole entry of another key moved under this one (a rename gone wrong, or a planted copy).
TEST_F(CacheCorruption, EntryNamingAnotherKey) {
  const std::string other_key(64, 'a');
  rewrite_entry(detail::cache_fs::encode_entry(other_key, entry_files()));
  expect_rebuilt("entry names another key");
}

// What parse_entry_header refuses, and that each refusal names what is wrong.
TEST(EntryHeader, MalformedHeadersNameTheProblem) {
  const std::string key(64, 'c'), sha(64, 'e');
  const std::string start = "tilejit.cache-entry/2\nkey " + key + "\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {start + "file 3 " + sha + " a\n", "no complete header"},
      {"tilejit.cache-entry/1\nkey " + key + "\nend\n", "is not tilejit.cache-entry/2"},
      {"tilejit.cache-entry/2\nkey short\nend\n", "no key"},
      {start + "file x " + sha + " a\nend\n", "unreadable file line"},
      {start + "file 3 " + sha.substr(1) + " a\nend\n", "unreadable file line"},
      {start + "file 3 " + sha + " \nend\n", "unreadable file line"},
      {start + "file 3 " + sha + " ../a\nend\n", "invalid file name '../a'"},
      {start + "file 3 " + sha + " .hidden\nend\n", "invalid file name '.hidden'"},
      {start + "file 3 " + sha + " a\nfile 4 " + sha + " a\nend\n", "'a' is listed twice"},
      {start + "size 3\nend\n", "unexpected line 'size 3'"},
      {start + "file 18446744073709551615 " + sha + " a\nend\n", "file sizes overflow"},
  };
  for (const auto& [text, needle] : cases) {
    std::string problem;
    EXPECT_FALSE(detail::cache_fs::parse_entry_header(text, &problem)) << text;
    EXPECT_NE(problem.find(needle), std::string::npos) << text << " -> " << problem;
  }
  std::string problem;
  const auto header = detail::cache_fs::parse_entry_header(
      start + "file 3 " + sha + " a\nfile 0 " + sha + " b\nend\nxyz", &problem);
  ASSERT_TRUE(header) << problem;
  ASSERT_EQ(header->files.size(), 2u);
  const uint64_t header_size = start.size() + 2 * (8 + 64 + 2) + 4;
  EXPECT_EQ(header->files[0].offset, header_size);
  EXPECT_EQ(header->files[1].offset, header_size + 3);
  EXPECT_EQ(header->entry_size, header_size + 3);
}

TEST_F(CacheCorruption, GroupWritableEntry) {
  fs::permissions(entry_, fs::perms::group_write, fs::perm_options::add);
  expect_refused("writable by group or others");
}

TEST_F(CacheCorruption, GroupWritableFile) {
  fs::permissions(entry_file(), fs::perms::others_write, fs::perm_options::add);
  expect_refused("writable by group or others");
}

TEST_F(CacheCorruption, SymlinkedEntryFile) {
  fs::rename(entry_file(), cache_.scratch() / "planted");
  fs::create_symlink(cache_.scratch() / "planted", entry_file());
  expect_refused("entry is a symlink");
}

TEST_F(CacheCorruption, SymlinkedEntryDirectory) {
  const fs::path elsewhere = cache_.scratch() / "elsewhere";
  fs::rename(entry_, elsewhere);
  fs::create_directory_symlink(elsewhere, entry_);
  expect_refused("symlink");
}

TEST_F(CacheCorruption, GroupWritableCacheRoot) {
  fs::permissions(cache_.root(), fs::perms::group_write, fs::perm_options::add);
  Attempt attempt = compile_fresh(program_, kScale);
  EXPECT_EQ(attempt.source, CompileSource::kBuilt);
  EXPECT_NE(attempt.warnings.find("refusing to use the disk cache"), std::string::npos)
      << attempt.warnings;
  EXPECT_THROW((void)DiskCache(cache_.root()).list(false), Error);  // the CLI reports it
}

// Lookups keep the cache's v1 directory open (cache_files.h, open_version_for_reading); what
// they hold must follow the directory at the path, and its permissions, as they are now.
TEST_F(CacheCorruption, CacheDirectoryReplacedWhileHeld) {
  ASSERT_EQ(compile_fresh(program_, kScale).source, CompileSource::kDiskCache);  // v1 held now
  fs::rename(cache_.root(), cache_.scratch() / "moved-away");
  for (const fs::path& dir : {cache_.root(), cache_.root() / "v1"}) {
    fs::create_directory(dir);
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
  }
  // The moved directory still holds the entry; a lookup through the held descriptor would find it.
  EXPECT_EQ(compile_fresh(program_, kScale).source, CompileSource::kBuilt);
  EXPECT_EQ(compile_fresh(program_, kScale).source, CompileSource::kDiskCache);
  EXPECT_TRUE(fs::exists(cache_.entry(key_)));
}

TEST_F(CacheCorruption, VersionDirectoryMadeGroupWritableWhileHeld) {
  ASSERT_EQ(compile_fresh(program_, kScale).source, CompileSource::kDiskCache);  // v1 held now
  fs::permissions(cache_.root() / "v1", fs::perms::group_write, fs::perm_options::add);
  Attempt attempt = compile_fresh(program_, kScale);
  EXPECT_EQ(attempt.source, CompileSource::kBuilt);
  EXPECT_NE(attempt.warnings.find("refusing to use the disk cache"), std::string::npos)
      << attempt.warnings;
  EXPECT_NE(attempt.warnings.find("writable by group or others"), std::string::npos)
      << attempt.warnings;
}

TEST_F(CacheCorruption, AbandonedStagingDirectoryIsReclaimed) {
  // What a process killed between writing and publishing leaves: a half-written staging dir.
  const fs::path staging =
      cache_.root() / "v1" / "tmp" / (key_.substr(0, 16) + ".99999.0123456789abcdef");
  fs::create_directories(staging);
  std::ofstream(staging / "kernel.so") << "half";
  // A young one may belong to a process between mkdir and flock: it stays.
  const Program other = axpy_program(kScale + 1);
  (void)compile_fresh(other, kScale + 1);
  EXPECT_TRUE(fs::exists(staging));
  // Backdated past the grace period and unlocked: its owner is dead, the next store removes it.
  struct timespec old_times[2] = {{0, UTIME_OMIT}, {::time(nullptr) - 3600, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, staging.c_str(), old_times, 0), 0);
  (void)compile_fresh(axpy_program(kScale + 2), kScale + 2);
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_EQ(compile_fresh(program_, kScale).source, CompileSource::kDiskCache);
  EXPECT_EQ(entry_problem(cache_, key_), "");
}

TEST_F(CacheCorruption, LockedStagingDirectoryIsKept) {
  const fs::path staging = cache_.root() / "v1" / "tmp" / "live.1.0123456789abcdef";
  fs::create_directories(staging);
  const int fd = ::open(staging.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // a live writer holds its staging dir
  struct timespec old_times[2] = {{0, UTIME_OMIT}, {::time(nullptr) - 3600, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, staging.c_str(), old_times, 0), 0);
  (void)compile_fresh(axpy_program(kScale + 1), kScale + 1);
  EXPECT_TRUE(fs::exists(staging));
  ::close(fd);
}

TEST_F(CacheCorruption, UnwritableCacheStillCompiles) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  fs::permissions(cache_.root() / "v1", fs::perms::owner_write, fs::perm_options::remove);
  const Program other = axpy_program(kScale + 1);
  Attempt attempt = compile_fresh(other, kScale + 1);
  EXPECT_EQ(attempt.source, CompileSource::kBuilt);
  EXPECT_NE(attempt.warnings.find("store skipped"), std::string::npos) << attempt.warnings;
  EXPECT_EQ(compile_fresh(program_, kScale).source, CompileSource::kDiskCache);  // reads still work
  fs::permissions(cache_.root() / "v1", fs::perms::owner_write, fs::perm_options::add);
}

TEST_F(CacheCorruption, FailedWritesSkipTheStore) {
  // A full disk seen through a file size limit: every write beyond 4 KiB fails (EFBIG).
  CompiledArtifact artifact = detail::compile_with_outcome(program_, {}).kernel.artifact();
  const std::string key(64, 'e');
  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  ::testing::internal::CaptureStderr();
  DiskCache(cache_.root()).store(key, artifact);
  const std::string warnings = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  EXPECT_NE(warnings.find("store skipped"), std::string::npos) << warnings;
  EXPECT_FALSE(fs::exists(cache_.entry(key)));
  EXPECT_TRUE(fs::is_empty(cache_.root() / "v1" / "tmp"));  // the staging copy is gone
}

TEST_F(CacheCorruption, EvictionIsLeastRecentlyUsedAndSparesReaders) {
  const std::string key2 = cache_key(axpy_program(kScale + 1));
  const std::string key3 = cache_key(axpy_program(kScale + 2));
  (void)compile_fresh(axpy_program(kScale + 1), kScale + 1);
  (void)compile_fresh(axpy_program(kScale + 2), kScale + 2);
  // Ages: key_ oldest, then key2, then key3; then key_ is used again.
  int64_t age = 300;
  for (const std::string& key : {key_, key2, key3}) {
    struct timespec times[2] = {{0, UTIME_OMIT}, {::time(nullptr) - age, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, cache_.entry(key).c_str(), times, 0), 0);
    age -= 100;
  }
  EXPECT_EQ(compile_fresh(program_, kScale).source, CompileSource::kDiskCache);

  const DiskCache disk(cache_.root());
  uint64_t one_entry = 0;
  for (const auto& info : disk.list(false)) one_entry = std::max(one_entry, info.bytes);
  // key2 is now least recently used; while another process reads it, it is not evicted.
  const int reader = ::open(cache_.entry(key2).c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(reader, 0);
  ASSERT_EQ(::flock(reader, LOCK_SH), 0);
  disk.evict_to(2 * one_entry);
  EXPECT_TRUE(fs::exists(cache_.entry(key2)));
  EXPECT_FALSE(fs::exists(cache_.entry(key3)));
  EXPECT_TRUE(fs::exists(cache_.entry(key_)));
  ::close(reader);
  disk.evict_to(one_entry);
  EXPECT_FALSE(fs::exists(cache_.entry(key2)));
  EXPECT_TRUE(fs::exists(cache_.entry(key_)));
  EXPECT_EQ(compile_fresh(program_, kScale).source, CompileSource::kDiskCache);
}

TEST_F(CacheCorruption, SizeCapFromTheEnvironment) {
  ::setenv("TILELANG_CACHE_MAX_BYTES", "1", 1);
  (void)compile_fresh(axpy_program(kScale + 1), kScale + 1);
  ::unsetenv("TILELANG_CACHE_MAX_BYTES");
  EXPECT_FALSE(fs::exists(entry_));  // the older entry went to make room
  EXPECT_LE(DiskCache(cache_.root()).list(false).size(), 1u);
}

}  // namespace
}  // namespace tilejit
