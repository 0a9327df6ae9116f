// compile(): option resolution (explicit, environment, "auto"), Target text, out_idx,
// the memory cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "cache/cache_entry.h"
#include "cache_test_support.h"
#include "compile/compile.h"
#include "compile/kernel_state.h"

extern char** environ;  // POSIX: the process environment

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

// The seed's execution_backend names (docs/seed-compat.md): each maps to one of ours or says
// why it does not exist and what to use; TILELANG_EXECUTION_BACKEND takes them too.
TEST(ResolveOptions, SeedBackendNames) {
  ScopedEnv t("TILELANG_TARGET", nullptr), b("TILELANG_EXECUTION_BACKEND", nullptr);
  const Program c_program = axpy_program(2);
  Program cuda_program = ProgramBuilder("scale")
                             .source("extern \"C\" __global__ void scale(float* x) { x[0] = 1; }")
                             .tensor("x", "float32", {"n"})
                             .launch(Launch("scale"))
                             .build();
  auto backend_of = [](const Program& program, const char* backend, const char* target) {
    CompileOptions options;
    options.execution_backend = backend;
    options.target = target;
    return detail::resolve_options(program, options).backend;
  };
  for (const char* name : {"tvm_ffi", "cython", "dlpack"}) {
    EXPECT_EQ(backend_of(c_program, name, ""), "cpu") << name;
    EXPECT_EQ(backend_of(cuda_program, name, "sm_80"), "nvcc") << name;
  }
  EXPECT_EQ(backend_of(c_program, "auto", ""), "cpu");
  EXPECT_EQ(backend_of(cuda_program, "auto", "sm_80"), "nvrtc");
  EXPECT_EQ(backend_of(cuda_program, "nvrtc", "sm_80"), "nvrtc");
  {
    ScopedEnv seed("TILELANG_EXECUTION_BACKEND", "tvm_ffi");
    EXPECT_EQ(backend_of(cuda_program, "", "sm_80"), "nvcc");
  }
  auto expect_refused = [&](const Program& program, const char* backend,
                            std::vector<std::string> needles) {
    try {
      (void)backend_of(program, backend, program.language == Language::kC ? "" : "sm_80");
      ADD_FAILURE() << "execution_backend " << backend << " was accepted";
    } catch (const ArgumentError& e) {
      for (const std::string& needle : needles)
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_refused(cuda_program, "cutedsl", {"cutedsl", "CuTe DSL", "nvrtc", "nvcc"});
  expect_refused(c_program, "cutedsl", {"cutedsl"});
  expect_refused(cuda_program, "torch", {"torch", "Metal", "nvrtc"});
  expect_refused(cuda_program, "TVM_FFI", {"TVM_FFI", "tvm_ffi", "nvrtc"});  // names are exact
}

// target_host is the seed's TVM host target; the compiler of host code is host_compiler.
TEST(ResolveOptions, TargetHostIsTheSeedsHostTarget) {
  ScopedEnv t("TILELANG_TARGET", nullptr), b("TILELANG_EXECUTION_BACKEND", nullptr);
  const Program program = axpy_program(2);
  for (const char* host : {"", "llvm", "c"}) {
    CompileOptions options;
    options.target_host = host;
    EXPECT_NO_THROW((void)detail::resolve_options(program, options)) << host;
  }
  for (const char* host : {"c++", "clang", "llvm -mtriple=aarch64-linux-gnu", "cuda"}) {
    CompileOptions options;
    options.target_host = host;
    try {
      (void)detail::resolve_options(program, options);
      ADD_FAILURE() << "target_host '" << host << "' was accepted";
    } catch (const ArgumentError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(host), std::string::npos) << message;
      EXPECT_NE(message.find("host_compiler"), std::string::npos) << message;
    }
  }
  CompileOptions compiler;
  compiler.host_compiler = "cc";
  EXPECT_EQ(detail::resolve_options(program, compiler).host_compiler, "cc");
}

// The seed adapter's from_database: a Kernel from a saved artifact or a cache entry, nothing
// compiled; a missing or corrupted directory is an Error naming it and the problem.
TEST(KernelLoad, FromASavedArtifactAndFromACacheEntry) {
  ScopedCacheDir cache;
  const Kernel built = compile(axpy_program(6));
  const std::filesystem::path saved = cache.scratch() / "saved";
  built.artifact().save(saved);
  const Kernel from_saved = Kernel::load(saved);
  expect_axpy_correct(from_saved, 6);
  EXPECT_EQ(from_saved.cache_key(), "");
  EXPECT_EQ(from_saved.get_host_source(), built.get_host_source());

  const Kernel from_entry = Kernel::load(cache.entry(built.cache_key()));
  expect_axpy_correct(from_entry, 6);
  EXPECT_EQ(from_entry.cache_key(), built.cache_key());
}

// A compiler log is a file of its own (format 4), not a string inside artifact.json; an
// artifact of format 3, with the log inside, is still read.
TEST(ArtifactFiles, CompilerLogsAreFilesAndInlineLogsOfFormat3AreRead) {
  ScopedCacheDir cache;
  CompiledArtifact artifact;
  artifact.backend = "cpu";
  artifact.target = "c";
  artifact.binary_kind = "none";
  artifact.program = axpy_program(2);
  std::string log = "warning: \"quoted\"\n\ttab \\ and a control byte \x01\n";
  for (int i = 0; i < 200; ++i) log += fmt::format("line {} of the log\n", i);
  artifact.metadata = {{"compile_log", log}, {"log", ""}, {"host_compiler", "cc"}};
  const std::filesystem::path saved = cache.scratch() / "saved";
  artifact.save(saved);
  EXPECT_EQ(detail::read_file(saved / "metadata.compile_log"), log);
  EXPECT_FALSE(std::filesystem::exists(saved / "metadata.log"));  // empty: stays inline
  nlohmann::json header = nlohmann::json::parse(detail::read_file(saved / "artifact.json"));
  EXPECT_FALSE(header["metadata"].contains("compile_log"));
  EXPECT_EQ(header["format_version"], CompiledArtifact::kFormatVersion);
  EXPECT_EQ(CompiledArtifact::load(saved).metadata, artifact.metadata);

  // Both places at once is a damaged artifact, not a choice.
  header["metadata"]["compile_log"] = "other";
  std::ofstream(saved / "artifact.json") << header.dump();
  EXPECT_THROW((void)CompiledArtifact::load(saved), Error);

  header["format_version"] = 3;
  header["metadata"]["compile_log"] = log;
  std::ofstream(saved / "artifact.json") << header.dump();
  std::filesystem::remove(saved / "metadata.compile_log");
  EXPECT_EQ(CompiledArtifact::load(saved).metadata, artifact.metadata);
  header["format_version"] = 2;
  std::ofstream(saved / "artifact.json") << header.dump();
  EXPECT_THROW((void)CompiledArtifact::load(saved), Error);
}

TEST(KernelLoad, MissingAndCorruptedDirectoriesAreClearErrors) {
  ScopedCacheDir cache;
  const Kernel built = compile(axpy_program(8));
  auto expect_error = [](const std::filesystem::path& dir, const std::string& needle) {
    try {
      (void)Kernel::load(dir);
      ADD_FAILURE() << "loaded " << dir;
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(dir.string()), std::string::npos) << message;
      EXPECT_NE(message.find(needle), std::string::npos) << message;
    }
  };
  expect_error(cache.scratch() / "no-such-dir", "not a directory");

  const std::filesystem::path saved = cache.scratch() / "saved";
  built.artifact().save(saved);
  std::filesystem::remove(saved / "program.json");
  expect_error(saved, "program.json");
  built.artifact().save(saved);
  std::ofstream(saved / "artifact.json") << "{ truncated";
  expect_error(saved, "not valid JSON");
  built.artifact().save(saved);
  std::ofstream(saved / "kernel.so") << "not a shared library";
  expect_error(saved, "cannot load library");

  const std::filesystem::path entry = cache.entry(built.cache_key());
  {
    std::fstream file(entry / detail::cache_fs::kEntryFile,
                      std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(file);
    std::string head(4096, '\0');
    file.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::string problem;
    const auto header = detail::cache_fs::parse_entry_header(head, &problem);
    ASSERT_TRUE(header) << problem;
    const auto binary = std::find_if(header->files.begin(), header->files.end(),
                                     [](const auto& f) { return f.name == "kernel.so"; });
    ASSERT_NE(binary, header->files.end());
    file.clear();
    const auto at = static_cast<std::streamoff>(binary->offset + 100);
    file.seekg(at);
    const char byte = static_cast<char>(file.get());
    file.seekp(at);
    file.put(static_cast<char>(byte ^ 0x01));
  }
  expect_error(entry, "kernel.so does not match its recorded SHA-256");
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

// A memory hit reads the option variables from `environ` itself, not through getenv()
// (compile.cc): every way of changing the environment must be seen at the next hit.
TEST(Compile, MemoryHitSeesEveryKindOfEnvironmentChange) {
  ScopedCacheDir cache;
  ScopedEnv t("TILELANG_TARGET", nullptr), v("TILELANG_VERBOSE", nullptr);
  const Program program = axpy_program(5);
  (void)compile(program);
  const auto is_memory_hit = [&] {
    return detail::compile_with_outcome(program, {}).source == detail::CompileSource::kMemoryCache;
  };
  const auto hit_is_logged = [&] {
    ::testing::internal::CaptureStderr();
    (void)compile(program);
    return ::testing::internal::GetCapturedStderr().find("memory cache hit") != std::string::npos;
  };
  ASSERT_TRUE(is_memory_hit());

  // Added after entries that make the array grow (and move).
  for (int i = 0; i < 64; ++i) {
    ::setenv(fmt::format("TILEJIT_TEST_FILLER_{}", i).c_str(), "x", 1);
  }
  EXPECT_TRUE(is_memory_hit());
  {
    ScopedEnv hip("TILELANG_TARGET", "hip");
    EXPECT_THROW((void)compile(program), ArgumentError);
  }
  EXPECT_TRUE(is_memory_hit());

  // Set after two removals and an addition: the entry count and the last entry are as before.
  ::unsetenv("TILEJIT_TEST_FILLER_10");
  ::unsetenv("TILEJIT_TEST_FILLER_63");
  ::setenv("TILELANG_TARGET", "hip", 1);
  ::setenv("TILEJIT_TEST_FILLER_63", "x", 1);
  EXPECT_THROW((void)compile(program), ArgumentError);
  ::unsetenv("TILELANG_TARGET");
  EXPECT_TRUE(is_memory_hit());
  for (int i = 0; i < 64; ++i) ::unsetenv(fmt::format("TILEJIT_TEST_FILLER_{}", i).c_str());

  // A putenv() buffer rewritten in place: the entry's pointer stays, its value changes.
  char verbose[] = "TILELANG_VERBOSE=1";
  ::putenv(verbose);
  EXPECT_TRUE(hit_is_logged());
  verbose[sizeof verbose - 2] = '0';
  EXPECT_FALSE(hit_is_logged());
  ::unsetenv("TILELANG_VERBOSE");

  // clearenv() and a new, shorter environment, possibly at the old array's address.
  std::vector<std::pair<std::string, std::string>> saved;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const size_t equals = text.find('=');
    if (equals != std::string::npos)
      saved.emplace_back(text.substr(0, equals), text.substr(equals + 1));
  }
  ::clearenv();
  ::setenv("TILELANG_TARGET", "hip", 1);
  EXPECT_THROW((void)compile(program), ArgumentError);
  ::clearenv();
  for (const auto& [name, value] : saved) ::setenv(name.c_str(), value.c_str(), 1);
  EXPECT_TRUE(is_memory_hit());
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
