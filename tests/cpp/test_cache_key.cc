// The cache key: stable across processes, changed by every input that changes the binary.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "cache/disk_cache.h"
#include "cache/header_hashes.h"
#include "cache/key.h"
#include "cache_test_support.h"
#include "compile/compile.h"
#include "compile/kernel_state.h"

namespace tilejit {
namespace {

namespace fs = std::filesystem;
using testing::axpy_program;

// The key file a child process writes (see KeyHelper.SameKeyInThisProcess).
constexpr const char* kChildKeyFile = "TILEJIT_TEST_CHILD_KEY_FILE";

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

bool is_hex_key(const std::string& key) {
  return key.size() == 64 && key.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Run directly, it checks that one process computes one key; run as a child with
// TILEJIT_TEST_CHILD_KEY_FILE set, it also writes the key there for the parent to compare.
TEST(KeyHelper, SameKeyInThisProcess) {
  const std::string key = cache_key(axpy_program(7));
  EXPECT_TRUE(is_hex_key(key)) << key;
  EXPECT_EQ(cache_key(axpy_program(7)), key);
  if (const char* file = std::getenv(kChildKeyFile)) write_text(file, key);
}

TEST(CacheKey, SameProgramInTwoProcesses) {
  detail::TempDir dir("tilejit-key-test");
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> keys;
  for (int child = 0; child < 2; ++child) {
    const fs::path file = dir.path() / fmt::format("key{}", child);
    ::setenv(kChildKeyFile, file.c_str(), 1);
    detail::ProcessResult result = detail::run_process(
        {self, "--gtest_filter=KeyHelper.SameKeyInThisProcess"}, std::chrono::seconds(120));
    ::unsetenv(kChildKeyFile);
    ASSERT_EQ(result.exit_code, 0) << result.output;
    keys.push_back(detail::read_file(file));
  }
  EXPECT_EQ(keys[0], keys[1]);
  EXPECT_EQ(keys[0], cache_key(axpy_program(7)));
}

TEST(CacheKey, EqualProgramsGiveEqualKeys) {
  const Program program = axpy_program(7);
  EXPECT_EQ(cache_key(Program::from_json(program.to_json())), cache_key(program));
  CompileOptions llvm;
  llvm.target = "llvm";  // an alias of "c": the canonical target goes into the key
  EXPECT_EQ(cache_key(program, llvm), cache_key(program));
  CompileOptions same_out_idx;
  same_out_idx.out_idx = std::vector<int>{2};  // -1 normalized is 2
  EXPECT_EQ(cache_key(program, same_out_idx), cache_key(program));
  for (const char* host : {"llvm", "c"}) {  // the seed's host targets: this machine either way
    CompileOptions target_host;
    target_host.target_host = host;
    EXPECT_EQ(cache_key(program, target_host), cache_key(program)) << host;
  }
  CompileOptions seed_backend;
  seed_backend.execution_backend = "cython";  // the seed's name of the host-wrapper backend
  EXPECT_EQ(cache_key(program, seed_backend), cache_key(program));
}

TEST(CacheKey, EveryByteOfTheSourceMatters) {
  const Program program = axpy_program(7);
  std::set<std::string> keys{cache_key(program)};
  for (size_t i = 0; i < program.source.size(); ++i) {
    Program changed = program;
    changed.source[i] = static_cast<char>(changed.source[i] ^ 0x01);
    EXPECT_TRUE(keys.insert(cache_key(changed)).second)
        << "flipping source byte " << i << " kept the key";
  }
}

TEST(CacheKey, OptionsAndProgramFieldsMatter) {
  const Program program = axpy_program(7);
  std::set<std::string> keys{cache_key(program)};
  auto expect_new = [&](const Program& p, const CompileOptions& options, const char* what) {
    EXPECT_TRUE(keys.insert(cache_key(p, options)).second) << what << " did not change the key";
  };
  CompileOptions options;
  options.compile_flags = {"-O3"};
  expect_new(program, options, "a compile flag");
  options.compile_flags = {"-O2"};
  expect_new(program, options, "another compile flag");
  options = {};
  options.pass_configs["tl.disable_tma_lower"] = "true";
  expect_new(program, options, "a pass config");
  options.pass_configs["tl.disable_tma_lower"] = "false";
  expect_new(program, options, "a pass config value");
  options = {};
  options.out_idx = std::vector<int>{0};
  expect_new(program, options, "out_idx");
  options = {};
  options.host_compiler = "clang";
  expect_new(program, options, "host_compiler");
  Program defined = program;
  defined.defines["AXPY_UNUSED"] = "1";
  expect_new(defined, {}, "a define");
  Program renamed = program;
  renamed.params[0].name = "X";
  expect_new(renamed, {}, "a param name");
}

TEST(CacheKey, FormatVersionAndToolchainMatter) {
  const Program program = axpy_program(7);
  const detail::ResolvedOptions options = detail::resolve_options(program, {});
  const std::string base = detail::compute_cache_key(program, options, "cc 13.2");
  EXPECT_EQ(detail::compute_cache_key(program, options, "cc 13.2"), base);
  EXPECT_NE(detail::compute_cache_key(program, options, "cc 13.3"), base);
  EXPECT_NE(
      detail::compute_cache_key(program, options, "cc 13.2", CompiledArtifact::kFormatVersion + 1),
      base);
}

// A header tree: axpy_offset.h includes nested/inner.h; nested/other.h is never included.
struct HeaderTree {
  detail::TempDir dir{"tilejit-key-headers"};
  fs::path include = dir.path() / "include";

  HeaderTree() {
    fs::create_directories(include / "nested");
    write_text(include / "axpy_offset.h",
               "#include \"nested/inner.h\"\n#define AXPY_OFFSET (AXPY_INNER + 1.0f)\n");
    write_text(include / "nested" / "inner.h", "#define AXPY_INNER 0.5f\n");
    write_text(include / "nested" / "other.h", "/* not included */\n");
  }
};

// The headers in the key are the ones the compiler reported reading (its -MD output), found
// through the dependency record of the first build.
TEST(CacheKey, HeadersTheCompilerReadMatterAndNoOthers) {
  testing::ScopedCacheDir cache;
  HeaderTree tree;
  const Program program = axpy_program(7, tree.include.string());
  const std::string original = cache_key(program);  // no record yet: this compiles once
  const Kernel kernel = compile(program);
  EXPECT_EQ(kernel.cache_key(), original);
  EXPECT_EQ(detail::kernel_state(kernel).artifact.dependencies,
            (std::vector<std::string>{(tree.include / "axpy_offset.h").string(),
                                      (tree.include / "nested" / "inner.h").string()}));
  testing::expect_axpy_correct(kernel, 7, 1.5f);

  write_text(tree.include / "nested" / "inner.h", "#define AXPY_INNER 2.5f\n");
  const std::string edited = cache_key(program);
  EXPECT_NE(edited, original);  // a header included by an included header
  testing::expect_axpy_correct(compile(program), 7, 3.5f);
  write_text(tree.include / "nested" / "other.h", "/* never included, edited */\n");
  EXPECT_EQ(cache_key(program), edited);
  write_text(tree.include / "nested" / "inner.h", "#define AXPY_INNER 0.5f\n");
  EXPECT_EQ(cache_key(program), original);  // contents, not timestamps
  fs::remove(tree.include / "nested" / "inner.h");
  EXPECT_NE(cache_key(program), original);  // a header gone is a change too
}

TEST(CacheKey, AHeaderShadowingAnIncludedOneInAnEarlierDirectoryMatters) {
  testing::ScopedCacheDir cache;
  HeaderTree tree;
  const fs::path first = tree.dir.path() / "first";
  fs::create_directories(first);
  Program program = axpy_program(7, first.string());
  program.include_dirs.push_back(tree.include.string());
  const std::string original = cache_key(program);
  testing::expect_axpy_correct(compile(program), 7, 1.5f);
  write_text(first / "axpy_offset.h", "#define AXPY_OFFSET 4.0f\n");  // found first now
  EXPECT_NE(cache_key(program), original);
  testing::expect_axpy_correct(compile(program), 7, 4.0f);
}

// Headers are stat-ed from their include directory as it is opened for each key: an earlier
// directory that did not exist, and a directory replaced by another at its path, are seen by
// the next key.
TEST(CacheKey, IncludeDirectoriesAreLookedUpAnewForEachKey) {
  testing::ScopedCacheDir cache;
  HeaderTree tree;
  const fs::path first = tree.dir.path() / "not-yet";
  Program program = axpy_program(7, first.string());
  program.include_dirs.push_back(tree.include.string());
  const std::string original = cache_key(program);
  testing::expect_axpy_correct(compile(program), 7, 1.5f);
  fs::create_directories(first);
  write_text(first / "axpy_offset.h", "#define AXPY_OFFSET 4.0f\n");
  const std::string shadowed = cache_key(program);
  EXPECT_NE(shadowed, original);
  testing::expect_axpy_correct(compile(program), 7, 4.0f);

  // The directory at that path replaced: the new one's header is the one read and hashed.
  fs::rename(first, tree.dir.path() / "moved-away");
  fs::create_directories(first);
  write_text(first / "axpy_offset.h", "#define AXPY_OFFSET 2.5f\n");
  EXPECT_NE(cache_key(program), shadowed);
  testing::expect_axpy_correct(compile(program), 7, 2.5f);
}

TEST(CacheKey, IncludeFlagsNameUserHeaderDirectoriesToo) {
  testing::ScopedCacheDir cache;
  HeaderTree tree;
  Program program = axpy_program(7, tree.include.string());
  program.include_dirs.clear();
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"-I" + tree.include.string()},
        std::vector<std::string>{"-I", tree.include.string()},
        std::vector<std::string>{"-isystem", tree.include.string()}}) {
    CompileOptions options;
    options.compile_flags = flags;
    const std::string key = cache_key(program, options);
    write_text(tree.include / "nested" / "inner.h", "#define AXPY_INNER 9.0f\n");
    EXPECT_NE(cache_key(program, options), key) << flags[0];
    testing::expect_axpy_correct(compile(program, options), 7, 10.0f);
    write_text(tree.include / "nested" / "inner.h", "#define AXPY_INNER 0.5f\n");
    EXPECT_EQ(cache_key(program, options), key) << flags[0];
  }
}

// A new process reads the dependency record: it knows the key without compiling.
TEST(KeyHelper, IncludeKeyInThisProcess) {
  const char* include = std::getenv("TILEJIT_TEST_INCLUDE_DIR");
  if (include == nullptr) GTEST_SKIP() << "run by CacheKey.DependencyRecordServesANewProcess";
  write_text(std::getenv(kChildKeyFile), cache_key(axpy_program(7, include)));
}

TEST(CacheKey, DependencyRecordServesANewProcess) {
  testing::ScopedCacheDir cache;
  HeaderTree tree;
  const Program program = axpy_program(7, tree.include.string());
  const std::string key = compile(program).cache_key();
  const fs::path records = cache.root() / "v1" / "deps";
  ASSERT_EQ(std::distance(fs::directory_iterator(records), fs::directory_iterator()), 1);

  const fs::path file = tree.dir.path() / "child-key";
  ::setenv(kChildKeyFile, file.c_str(), 1);
  ::setenv("TILEJIT_TEST_INCLUDE_DIR", tree.include.c_str(), 1);
  ::setenv("TILELANG_VERBOSE", "1", 1);
  const detail::ProcessResult result =
      detail::run_process({fs::read_symlink("/proc/self/exe").string(),
                           "--gtest_filter=KeyHelper.IncludeKeyInThisProcess"},
                          std::chrono::seconds(120));
  ::unsetenv(kChildKeyFile);
  ::unsetenv("TILEJIT_TEST_INCLUDE_DIR");
  ::unsetenv("TILELANG_VERBOSE");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(detail::read_file(file), key);
  EXPECT_EQ(result.output.find("tilejit: axpy:"), std::string::npos)
      << "the child compiled instead of reading the record:\n"
      << result.output;

  // A record that is not one is removed, and the key is found again by compiling.
  for (const auto& record : fs::directory_iterator(records)) write_text(record.path(), "{oops");
  ::setenv(kChildKeyFile, file.c_str(), 1);
  ::setenv("TILEJIT_TEST_INCLUDE_DIR", tree.include.c_str(), 1);
  const detail::ProcessResult again =
      detail::run_process({fs::read_symlink("/proc/self/exe").string(),
                           "--gtest_filter=KeyHelper.IncludeKeyInThisProcess"},
                          std::chrono::seconds(120));
  ::unsetenv(kChildKeyFile);
  ::unsetenv("TILEJIT_TEST_INCLUDE_DIR");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(detail::read_file(file), key);
  EXPECT_NE(again.output.find("removing broken dependency record"), std::string::npos)
      << again.output;
}

// Header hashes are trusted only for files whose last change lies kTrustAfterNs before the
// read (header_hashes.h); a test that wants a trusted hash waits that long once.
void wait_until_trusted() {
  std::this_thread::sleep_for(std::chrono::nanoseconds(detail::HeaderHashes::kTrustAfterNs) +
                              std::chrono::milliseconds(100));
}

// Sets the file's mtime (nanoseconds since the epoch), as `touch -d` or an editor's undo might.
void set_mtime_ns(const fs::path& path, int64_t mtime_ns) {
  const struct timespec times[2] = {
      {0, UTIME_OMIT},
      {static_cast<time_t>(mtime_ns / 1'000'000'000), static_cast<long>(mtime_ns % 1'000'000'000)}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

std::string header_key(const HeaderTree& tree) {
  return detail::key_with_headers(
      std::string(64, 'b'), {tree.include},
      {(tree.include / "axpy_offset.h").string(), (tree.include / "nested" / "inner.h").string()});
}

// Unchanged headers are not read again: the key costs one stat per header. This is the
// intended trust rule, not an accident: contents are trusted while device, inode, size, mtime
// and ctime all hold (docs/cache.md, "Headers").
TEST(HeaderHashes, AnUnchangedTrustedHeaderIsNotReadAgain) {
  HeaderTree tree;
  const std::string fresh = header_key(tree);
  uint64_t reads = detail::HeaderHashes::global().reads();
  EXPECT_EQ(header_key(tree), fresh);
  EXPECT_EQ(detail::HeaderHashes::global().reads(), reads + 2)
      << "a file changed a moment ago is not trusted yet: it is read on every key";
  wait_until_trusted();
  EXPECT_EQ(header_key(tree), fresh);  // read once more, now trusted
  reads = detail::HeaderHashes::global().reads();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(header_key(tree), fresh);
  EXPECT_EQ(detail::HeaderHashes::global().reads(), reads);
}

TEST(HeaderHashes, AnEditWithItsMtimeRestoredGivesANewKey) {
  HeaderTree tree;
  const fs::path inner = tree.include / "nested" / "inner.h";
  wait_until_trusted();
  const std::string original = header_key(tree);
  const int64_t mtime_ns = detail::stat_signature(inner.string())->mtime_ns;
  write_text(inner, "#define AXPY_INNER 7.5f\n");  // the same size
  set_mtime_ns(inner, mtime_ns);                   // utime() cannot restore the ctime
  ASSERT_EQ(fs::file_size(inner), std::string("#define AXPY_INNER 0.5f\n").size());
  EXPECT_NE(header_key(tree), original);
}

// Two edits in the same second, the same size: the second still gives a new key, because a
// file changed that recently is never trusted without reading it (and the signature's times
// are in nanoseconds besides).
TEST(HeaderHashes, EditsWithinOneSecondGiveNewKeys) {
  HeaderTree tree;
  const fs::path inner = tree.include / "nested" / "inner.h";
  wait_until_trusted();
  const std::string original = header_key(tree);
  write_text(inner, "#define AXPY_INNER 1.5f\n");
  const std::string first = header_key(tree);
  write_text(inner, "#define AXPY_INNER 2.5f\n");
  const std::string second = header_key(tree);
  EXPECT_NE(first, original);
  EXPECT_NE(second, first);
  write_text(inner, "#define AXPY_INNER 0.5f\n");
  EXPECT_EQ(header_key(tree), original);  // contents, not timestamps
}

TEST(HeaderHashes, AHeaderRenamedOverByAnotherFileGivesANewKey) {
  HeaderTree tree;
  const fs::path inner = tree.include / "nested" / "inner.h";
  const fs::path replacement = tree.include / "nested" / "replacement.h";
  write_text(replacement, "#define AXPY_INNER 3.5f\n");  // the same size
  wait_until_trusted();
  const std::string original = header_key(tree);
  // Same size and mtime as the header it replaces: only the inode (and ctime) tell.
  set_mtime_ns(replacement, detail::stat_signature(inner.string())->mtime_ns);
  fs::rename(replacement, inner);
  EXPECT_NE(header_key(tree), original);
}

TEST(HeaderHashes, AHeaderThatGoesMissingIsForgotten) {
  HeaderTree tree;
  const fs::path inner = tree.include / "nested" / "inner.h";
  wait_until_trusted();
  const std::string original = header_key(tree);
  fs::remove(inner);
  const std::string missing = header_key(tree);
  EXPECT_NE(missing, original);
  EXPECT_FALSE(detail::HeaderHashes::global().remembered(inner.string()));
  write_text(inner, "#define AXPY_INNER 0.5f\n");
  EXPECT_EQ(header_key(tree), original);
}

// A process that finds a dependency record with trusted hashes stats the headers instead of
// reading them.
TEST(KeyHelper, IncludeKeyWithoutReadingHeaders) {
  const char* include = std::getenv("TILEJIT_TEST_INCLUDE_DIR");
  if (include == nullptr) GTEST_SKIP() << "run by CacheKey.RecordedHashesSpareANewProcessReads";
  const std::string key = cache_key(axpy_program(7, include));
  write_text(std::getenv(kChildKeyFile),
             fmt::format("{} {}", key, detail::HeaderHashes::global().reads()));
}

TEST(CacheKey, RecordedHashesSpareANewProcessReads) {
  testing::ScopedCacheDir cache;
  HeaderTree tree;
  wait_until_trusted();
  const Program program = axpy_program(7, tree.include.string());
  const std::string key = compile(program).cache_key();
  const fs::path file = tree.dir.path() / "child-key";
  const auto run_child = [&] {
    ::setenv(kChildKeyFile, file.c_str(), 1);
    ::setenv("TILEJIT_TEST_INCLUDE_DIR", tree.include.c_str(), 1);
    const detail::ProcessResult result =
        detail::run_process({fs::read_symlink("/proc/self/exe").string(),
                             "--gtest_filter=KeyHelper.IncludeKeyWithoutReadingHeaders"},
                            std::chrono::seconds(120));
    ::unsetenv(kChildKeyFile);
    ::unsetenv("TILEJIT_TEST_INCLUDE_DIR");
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return detail::read_file(file);
  };
  EXPECT_EQ(run_child(), key + " 0");

  // An edit seen by the child: it reads that header (only) and records its new hash... which
  // it cannot trust yet, the edit being this recent; it is read again until it is old enough.
  write_text(tree.include / "nested" / "inner.h", "#define AXPY_INNER 4.5f\n");
  const std::string edited = run_child();
  EXPECT_NE(edited.substr(0, 64), key);
  EXPECT_EQ(edited.substr(64), " 1");
  wait_until_trusted();
  EXPECT_EQ(run_child(), edited.substr(0, 64) + " 1");  // read, now trusted, and recorded
  EXPECT_EQ(run_child(), edited.substr(0, 64) + " 0");
}

// A header edited between two compiles of one Program in one process is seen by the memory
// hit path, which recomputes the key from the headers' stat signatures.
TEST(CacheKey, AMemoryHitSeesAnEditedHeader) {
  testing::ScopedCacheDir cache;
  HeaderTree tree;
  wait_until_trusted();
  const Program program = axpy_program(7, tree.include.string());
  EXPECT_EQ(detail::compile_with_outcome(program, {}).source, detail::CompileSource::kBuilt);
  const detail::CompileOutcome hit = detail::compile_with_outcome(program, {});
  EXPECT_EQ(hit.source, detail::CompileSource::kMemoryCache);
  testing::expect_axpy_correct(hit.kernel, 7, 1.5f);
  const int64_t mtime_ns =
      detail::stat_signature((tree.include / "nested" / "inner.h").string())->mtime_ns;
  write_text(tree.include / "nested" / "inner.h", "#define AXPY_INNER 6.5f\n");
  set_mtime_ns(tree.include / "nested" / "inner.h", mtime_ns);
  const detail::CompileOutcome edited = detail::compile_with_outcome(program, {});
  EXPECT_EQ(edited.source, detail::CompileSource::kBuilt);
  EXPECT_NE(edited.kernel.cache_key(), hit.kernel.cache_key());
  testing::expect_axpy_correct(edited.kernel, 7, 7.5f);
}

// Records are lines of text (format 3, <base key>.deps); a damaged one is removed.
TEST(DependencyRecord, TextRecordsRoundTripAndDamagedOnesAreRemoved) {
  testing::ScopedCacheDir cache;
  const detail::DiskCache disk(cache.root());
  const std::string base_key(64, 'a');
  const std::vector<detail::DiskCache::RecordedHeader> record = {
      {"/inc/a.h", detail::HeaderHash{{1, 2, 3, 4, -5}, std::string(64, 'c')}},
      {"/inc/with space.h", std::nullopt},
      {"/inc/b.h",
       detail::HeaderHash{{UINT64_MAX, 7, 0, INT64_MIN, INT64_MAX}, std::string(64, 'd')}}};
  disk.store_dependencies(base_key, record);
  EXPECT_EQ(disk.load_dependencies(base_key), record);
  const fs::path file = cache.root() / "v1" / "deps" / (base_key + ".deps");
  const std::string good = detail::read_file(file);
  const std::string sha_c(64, 'c');
  for (const std::string& damaged :
       {good.substr(0, good.size() - 1),  // truncated inside the last line
        good.substr(0, good.find("base_key")),
        "tilejit.dependencies/3\nbase_key " + std::string(64, 'b') + "\n",  // another key
        "tilejit.dependencies/4\nbase_key " + base_key + "\n",
        "tilejit.dependencies/3\nbase_key " + base_key + "\n" + sha_c + " 1 2 3 4 /inc/a.h\n",
        "tilejit.dependencies/3\nbase_key " + base_key + "\n" + sha_c + " 1 2 x 4 5 /inc/a.h\n",
        "tilejit.dependencies/3\nbase_key " + base_key + "\n" + sha_c + " 1 2 3 4 5\n",
        "tilejit.dependencies/3\nbase_key " + base_key + "\nC" + sha_c.substr(1) +
            " 1 2 3 4 5 /inc/a.h\n",
        "tilejit.dependencies/3\nbase_key " + base_key + "\n-\n"}) {
    write_text(file, damaged);
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(disk.load_dependencies(base_key), std::nullopt) << damaged;
    EXPECT_NE(::testing::internal::GetCapturedStderr().find("removing broken dependency record"),
              std::string::npos);
    EXPECT_FALSE(fs::exists(file)) << damaged;
  }
  // Not representable in a line: not recorded (the next process builds to learn the headers).
  disk.store_dependencies(base_key, {{"/inc/new\nline.h", std::nullopt}});
  EXPECT_FALSE(fs::exists(file));
}

// Records of format 1 (paths only) and 2 (JSON with hashes) are still read, and replaced by
// one of format 3; format 1's headers have no hashes.
TEST(DependencyRecord, JsonRecordsAreReadAndReplacedAndMalformedOnesRemoved) {
  testing::ScopedCacheDir cache;
  const detail::DiskCache disk(cache.root());
  const std::string base_key(64, 'a');
  const fs::path text = cache.root() / "v1" / "deps" / (base_key + ".deps");
  const fs::path file = cache.root() / "v1" / "deps" / (base_key + ".json");
  fs::create_directories(file.parent_path());
  fs::permissions(cache.root(), fs::perms::owner_all, fs::perm_options::replace);
  fs::permissions(cache.root() / "v1", fs::perms::owner_all, fs::perm_options::replace);
  fs::permissions(file.parent_path(), fs::perms::owner_all, fs::perm_options::replace);
  write_text(file, nlohmann::json{{"format", "tilejit.dependencies/2"},
                                  {"base_key", base_key},
                                  {"headers",
                                   {{{"path", "/inc/a.h"},
                                     {"sha256", std::string(64, 'c')},
                                     {"device", 1},
                                     {"inode", 2},
                                     {"size", 3},
                                     {"mtime_ns", 4},
                                     {"ctime_ns", 5}}}}}
                       .dump());
  const std::vector<detail::DiskCache::RecordedHeader> hashed = {
      {"/inc/a.h", detail::HeaderHash{{1, 2, 3, 4, 5}, std::string(64, 'c')}}};
  EXPECT_EQ(disk.load_dependencies(base_key), hashed);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(disk.load_dependencies(base_key), hashed);  // from the text record now
  fs::remove(text);

  write_text(file, nlohmann::json{{"format", "tilejit.dependencies/1"},
                                  {"base_key", base_key},
                                  {"headers", {"/inc/a.h", "/inc/b.h"}}}
                       .dump());
  EXPECT_EQ(disk.load_dependencies(base_key),
            (std::vector<detail::DiskCache::RecordedHeader>{{"/inc/a.h", std::nullopt},
                                                            {"/inc/b.h", std::nullopt}}));
  EXPECT_TRUE(fs::exists(text));
  fs::remove(text);

  for (const nlohmann::json& header :
       {nlohmann::json{{"path", "/inc/a.h"}, {"sha256", std::string(64, 'c')}},  // no signature
        nlohmann::json{{"path", 7}}, nlohmann::json("/inc/a.h")}) {
    write_text(file, nlohmann::json{{"format", "tilejit.dependencies/2"},
                                    {"base_key", base_key},
                                    {"headers", {header}}}
                         .dump());
    EXPECT_EQ(disk.load_dependencies(base_key), std::nullopt) << header;
    EXPECT_FALSE(fs::exists(file)) << header;
  }
}

TEST(CacheKey, CudaTargetArchMatters) {
  const Program program =
      ProgramBuilder("scale")
          .source(
              "extern \"C\" __global__ void scale(float* x, int n) {\n"
              "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
              "  if (i < n) x[i] *= 2.0f;\n"
              "}\n")
          .tensor("x", "float32", {"n"})
          .launch(Launch("scale").with_grid({"ceildiv(n, 128)"}).with_block({128}))
          .build();
  CompileOptions sm80, sm90, sm90a;
  sm80.target = "cuda -arch=sm_80";
  sm90.target = "sm_90";
  sm90a.target = "cuda -arch=sm_90a";
  std::string k80;
  try {
    k80 = cache_key(program, sm80);
  } catch (const NotAvailableError& e) {
    GTEST_SKIP() << "no CUDA toolchain to fingerprint: " << e.what();
  }
  const std::string k90 = cache_key(program, sm90);
  EXPECT_NE(k80, k90);
  EXPECT_NE(cache_key(program, sm90a), k90);
  EXPECT_EQ(cache_key(program, sm90), k90);
}

}  // namespace
}  // namespace tilejit
