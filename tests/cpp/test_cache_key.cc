// The cache key: stable across processes, changed by every input that changes the binary.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "backend/backend.h"
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
  options.target_host = "clang";
  expect_new(program, options, "target_host");
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
  const detail::ProcessResult result = detail::run_process(
      {fs::read_symlink("/proc/self/exe").string(), "--gtest_filter=KeyHelper.IncludeKey*"},
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
  const detail::ProcessResult again = detail::run_process(
      {fs::read_symlink("/proc/self/exe").string(), "--gtest_filter=KeyHelper.IncludeKey*"},
      std::chrono::seconds(120));
  ::unsetenv(kChildKeyFile);
  ::unsetenv("TILEJIT_TEST_INCLUDE_DIR");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(detail::read_file(file), key);
  EXPECT_NE(again.output.find("removing broken dependency record"), std::string::npos)
      << again.output;
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
