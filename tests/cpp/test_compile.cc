// compile(): option resolution (explicit, environment, "auto"), Target text, out_idx,
// the memory cache.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "backend/backend.h"
#include "cache_test_support.h"
#include "compile/compile.h"
#include "compile/kernel_state.h"

namespace tilejit {
namespace {

using detail::Target;
using testing::axpy_program;
using testing::expect_axpy_correct;
using testing::ScopedCacheDir;

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(TargetParse, CanonicalForms) {
  EXPECT_EQ(Target::parse("cuda -arch=sm_90a").str(), "cuda -arch=sm_90a");
  EXPECT_EQ(Target::parse("sm_90a"), (Target{"cuda", "sm_90a"}));
  EXPECT_EQ(Target::parse("  cuda   -arch sm_80 ").str(), "cuda -arch=sm_80");
  EXPECT_EQ(Target::parse("cuda").str(), "cuda");
  EXPECT_EQ(Target::parse("cuda -arch=auto").str(), "cuda");
  EXPECT_EQ(Target::parse("cuda -arch=auto-a").str(), "cuda -arch=auto-a");
  EXPECT_EQ(Target::parse("llvm"), Target::parse("c"));
  EXPECT_EQ(Target::parse("hip -mcpu=gfx90a").str(), "hip -mcpu=gfx90a");
  EXPECT_EQ(Target::parse("metal").str(), "metal");
  EXPECT_EQ(Target::parse("auto").kind, "auto");
  for (const char* text : {"cuda -arch=sm_90a", "sm_100f", "compute_80", "hip -mcpu=gfx942"}) {
    EXPECT_EQ(Target::parse(Target::parse(text).str()), Target::parse(text)) << text;
  }
}

TEST(TargetParse, RejectsBadText) {
  for (const char* text : {"", "cudaa", "cuda -arch=sm90", "cuda -mcpu=gfx90a", "c -arch=sm_80",
                           "cuda -arch=sm_80 -arch=sm_90", "sm_80 extra", "nvidia/h100"}) {
    try {
      (void)Target::parse(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const ArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find("target"), std::string::npos) << e.what();
    }
  }
}

TEST(ResolveOptions, DefaultsFollowTheProgram) {
  ScopedEnv t("TILELANG_TARGET", nullptr), b("TILELANG_EXECUTION_BACKEND", nullptr),
      v("TILELANG_VERBOSE", nullptr);
  const Program program = axpy_program(2);
  const detail::ResolvedOptions options = detail::resolve_options(program, {});
  EXPECT_EQ(options.backend, "cpu");
  EXPECT_EQ(options.target.str(), "c");
  EXPECT_EQ(options.out_idx, std::vector<int>{2});
  EXPECT_FALSE(options.verbose);
}

TEST(ResolveOptions, EnvironmentThenExplicit) {
  ScopedEnv t("TILELANG_TARGET", "llvm"), b("TILELANG_EXECUTION_BACKEND", "cpu");
  Program program = axpy_program(2);
  program.compile_flags = {"-O2"};
  for (const char* on : {"1", "true", "YES", "On"}) {
    ScopedEnv v("TILELANG_VERBOSE", on);
    EXPECT_TRUE(detail::resolve_options(program, {}).verbose) << on;
  }
  for (const char* off : {"0", "false", "", "2"}) {
    ScopedEnv v("TILELANG_VERBOSE", off);
    EXPECT_FALSE(detail::resolve_options(program, {}).verbose) << off;
  }
  CompileOptions explicit_options;
  explicit_options.verbose = false;
  explicit_options.compile_flags = {"-DEXTRA"};
  explicit_options.out_idx = std::vector<int>{-1, 0};
  ScopedEnv v("TILELANG_VERBOSE", "1");
  const detail::ResolvedOptions resolved = detail::resolve_options(program, explicit_options);
  EXPECT_FALSE(resolved.verbose);
  EXPECT_EQ(resolved.target.str(), "c");
  EXPECT_EQ(resolved.compile_flags, (std::vector<std::string>{"-O2", "-DEXTRA"}));
  EXPECT_EQ(resolved.out_idx, (std::vector<int>{0, 2}));
}

TEST(ResolveOptions, BadOptionsNameTheOption) {
  ScopedEnv t("TILELANG_TARGET", nullptr), b("TILELANG_EXECUTION_BACKEND", nullptr);
  const Program program = axpy_program(2);
  auto expect_error = [&](CompileOptions options, const std::string& needle) {
    try {
      (void)detail::resolve_options(program, options);
      ADD_FAILURE() << "accepted options expected to fail with '" << needle << "'";
    } catch (const ArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto out_idx = [](std::vector<int> indices) {
    CompileOptions options;
    options.out_idx = std::move(indices);
    return options;
  };
  auto target = [](std::string text) {
    CompileOptions options;
    options.target = std::move(text);
    return options;
  };
  CompileOptions bad_backend;
  bad_backend.execution_backend = "no_such_backend";
  expect_error(out_idx({3}), "out_idx");
  expect_error(out_idx({-4}), "out_idx");
  expect_error(out_idx({2, -1}), "out_idx");
  expect_error(target("cuda -arch=sm_90"), "target");
  expect_error(target("bogus"), "target");
  expect_error(bad_backend, "no_such_backend");
  {
    ScopedEnv bad("TILELANG_TARGET", "hip");
    expect_error({}, "target");
  }
}

TEST(Compile, BuildsAndMemoizes) {
  ScopedCacheDir cache;
  const Program program = axpy_program(3);
  detail::CompileOutcome first = detail::compile_with_outcome(program, {});
  EXPECT_EQ(first.source, detail::CompileSource::kBuilt);
  expect_axpy_correct(first.kernel, 3);
  detail::CompileOutcome second = detail::compile_with_outcome(program, {});
  EXPECT_EQ(second.source, detail::CompileSource::kMemoryCache);
  EXPECT_EQ(&detail::kernel_state(second.kernel), &detail::kernel_state(first.kernel));
  EXPECT_EQ(first.kernel.cache_key(), cache_key(program));
  EXPECT_EQ(first.kernel.out_idx(), std::vector<int>{2});

  detail::MemoryCache::global().clear();
  detail::CompileOutcome third = detail::compile_with_outcome(program, {});
  EXPECT_EQ(third.source, detail::CompileSource::kDiskCache);
  expect_axpy_correct(third.kernel, 3);
  EXPECT_EQ(third.kernel.get_device_source(), first.kernel.get_device_source());
}

// A memory hit skips option resolution and the key (a per-thread memo); it must still notice
// every change that makes a different Kernel: the Program, the options, the environment.
TEST(Compile, MemoryHitFollowsProgramOptionsAndEnvironment) {
  ScopedCacheDir cache;
  ScopedEnv t("TILELANG_TARGET", nullptr), v("TILELANG_VERBOSE", nullptr);
  const Program program = axpy_program(9);
  const detail::CompileOutcome first = detail::compile_with_outcome(program, {});
  EXPECT_EQ(first.source, detail::CompileSource::kBuilt);
  const detail::CompileOutcome hit = detail::compile_with_outcome(program, {});
  EXPECT_EQ(hit.source, detail::CompileSource::kMemoryCache);
  EXPECT_EQ(&detail::kernel_state(hit.kernel), &detail::kernel_state(first.kernel));

  Program edited = program;
  edited.source.replace(edited.source.find("9.0f"), 4, "8.0f");  // same name, same size
  const detail::CompileOutcome other = detail::compile_with_outcome(edited, {});
  EXPECT_EQ(other.source, detail::CompileSource::kBuilt);
  expect_axpy_correct(other.kernel, 8);
  expect_axpy_correct(compile(program), 9);

  CompileOptions b_is_output;
  b_is_output.out_idx = std::vector<int>{1};
  EXPECT_EQ(compile(program, b_is_output).out_idx(), std::vector<int>{1});
  EXPECT_EQ(compile(program).out_idx(), std::vector<int>{2});

  {
    // The same Program and options under another TILELANG_TARGET are resolved again.
    ScopedEnv hip("TILELANG_TARGET", "hip");
    EXPECT_THROW((void)compile(program), ArgumentError);
  }
  {
    ScopedEnv verbose("TILELANG_VERBOSE", "1");
    ::testing::internal::CaptureStderr();
    (void)compile(program);
    (void)compile(program);
    const std::string log = ::testing::internal::GetCapturedStderr();
    size_t lines = 0;
    for (size_t at = log.find("memory cache hit"); at != std::string::npos;
         at = log.find("memory cache hit", at + 1)) {
      ++lines;
    }
    EXPECT_EQ(lines, 2u) << log;
  }
  EXPECT_EQ(detail::compile_with_outcome(program, {}).source, detail::CompileSource::kMemoryCache);
  detail::MemoryCache::global().clear();
  EXPECT_EQ(detail::compile_with_outcome(program, {}).source, detail::CompileSource::kDiskCache);
}

// Header contents are part of the key: an edited header must never be served from memory.
TEST(Compile, EditedHeaderIsNeverAMemoryHit) {
  ScopedCacheDir cache;
  detail::TempDir dir("tilejit-test-include");
  const std::filesystem::path header = dir.path() / "axpy_offset.h";
  auto write_offset = [&](const char* text) {
    std::ofstream(header) << "#define AXPY_OFFSET " << text << "\n";
  };
  write_offset("1.5f");
  const Program program = axpy_program(10, dir.path().string());
  expect_axpy_correct(compile(program), 10, 1.5f);
  write_offset("2.5f");
  expect_axpy_correct(compile(program), 10, 2.5f);
  write_offset("1.5f");
  EXPECT_EQ(detail::compile_with_outcome(program, {}).source, detail::CompileSource::kMemoryCache);
}

TEST(Compile, DisableCacheWritesNothing) {
  ScopedCacheDir cache;
  ScopedEnv off("TILELANG_DISABLE_CACHE", "1");
  expect_axpy_correct(compile(axpy_program(4)), 4);
  EXPECT_FALSE(std::filesystem::exists(cache.root()));
}

TEST(Compile, ConcurrentCallsForOneKeyBuildOnce) {
  ScopedCacheDir cache;
  const Program program = axpy_program(5);
  std::vector<detail::CompileOutcome> outcomes(6);
  std::vector<std::thread> threads;
  for (auto& outcome : outcomes) {
    threads.emplace_back([&] { outcome = detail::compile_with_outcome(program, {}); });
  }
  for (auto& thread : threads) thread.join();
  int built = 0;
  for (const auto& outcome : outcomes) {
    built += outcome.source == detail::CompileSource::kBuilt;
    EXPECT_EQ(&detail::kernel_state(outcome.kernel), &detail::kernel_state(outcomes[0].kernel));
  }
  EXPECT_EQ(built, 1);
  expect_axpy_correct(outcomes[0].kernel, 5);
}

TEST(Compile, CompileErrorIsNotCached) {
  ScopedCacheDir cache;
  Program program = axpy_program(6);
  program.source += "this is not C;\n";
  EXPECT_THROW((void)compile(program), CompileError);
  EXPECT_EQ(detail::MemoryCache::global().size(), 0u);
  EXPECT_THROW((void)compile(program), CompileError);  // tried again, not a cached failure
}

}  // namespace
}  // namespace tilejit
