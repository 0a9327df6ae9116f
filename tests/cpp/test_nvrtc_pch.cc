// NVRTC precompiled headers (docs/cache.md): a Program with user include dirs writes a PCH of
// its #include prefix into the cache's pch/ directory; a second Program with the same prefix
// loads it; the binaries are the same as without; a damaged PCH or an edited header is never
// used; TILEJIT_NVRTC_PCH=0 turns it off. No GPU needed: NVRTC compiles without one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "cache/disk_cache.h"
#include "cache_test_support.h"
#include "cuda/nvrtc.h"
#include "cuda/nvrtc_pch.h"
#include "cuda/nvrtc_worker.h"
#include "tilejit/tilejit.h"

namespace tilejit {
namespace {

namespace fs = std::filesystem;
using testing::ScopedCacheDir;

#define REQUIRE_NVRTC_PCH()                                                            \
  do {                                                                                 \
    std::string why_;                                                                  \
    if (!cuda::nvrtc_available(&why_)) GTEST_SKIP() << why_;                           \
    if (cuda::nvrtc().nvrtcGetPCHCreateStatus == nullptr)                              \
      GTEST_SKIP() << "NVRTC " << cuda::nvrtc().version_string() << " has no PCH API"; \
  } while (0)

// A header with enough templates that a PCH is worth writing, as tl_templates' are.
constexpr const char* kHeader = R"(#pragma once
#include <cuda/std/type_traits>
template <class T, int N> struct Vec { T v[N]; };
template <class T, int N> __device__ Vec<T, N> scaled(Vec<T, N> a, T s) {
  Vec<T, N> r;
  for (int i = 0; i < N; ++i) r.v[i] = a.v[i] * s + HEADER_BIAS;
  return r;
}
)";

// Distinct kernels behind one #include prefix (a TileLang GEMM and its other tile sizes).
Program program(const fs::path& include_dir, int variant) {
  const std::string source = fmt::format(
      "// variant {0}\n"
      "#include \"pch_lib.h\"\n"
      "\n"
      "extern \"C\" __global__ void scale{0}(float* x, int n) {{\n"
      "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
      "  if (i < n) {{ Vec<float, {0}> a{{}}; a.v[0] = x[i]; x[i] = scaled(a, {0}.0f).v[0]; }}\n"
      "}}\n",
      variant);
  return ProgramBuilder(fmt::format("pch_variant_{}", variant))
      .source(source)
      .tensor("x", "float32", {"n"})
      .launch(
          Launch(fmt::format("scale{}", variant)).with_grid({"ceildiv(n, 128)"}).with_block({128}))
      .include_dir(include_dir.string())
      .build();
}

Kernel compile_nvrtc(const Program& p) {
  CompileOptions options;
  options.execution_backend = "nvrtc";
  options.target = "cuda -arch=sm_90a";
  return compile(p, options);
}

std::string pch_of(const Kernel& kernel) {
  const auto& metadata = kernel.artifact().metadata;
  auto it = metadata.find("pch");
  return it == metadata.end() ? std::string() : it->second;
}

std::vector<fs::path> pch_files(const fs::path& cache_root) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(cache_root / "v1" / "pch", ec)) {
    if (entry.path().extension() == ".pch") files.push_back(entry.path());
  }
  return files;
}

class NvrtcPch : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("TILEJIT_NVRTC_PCH");
    include_ = cache_.scratch() / "include";
    fs::create_directories(include_);
    write_header("2.0f");
  }
  void TearDown() override { ::unsetenv("TILEJIT_NVRTC_PCH"); }

  void write_header(const std::string& bias) {
    std::ofstream(include_ / "pch_lib.h") << "#define HEADER_BIAS " << bias << "\n" << kHeader;
  }
  // The binary without any PCH, from a cache of its own.
  std::string binary_without_pch(const Program& p) {
    ScopedCacheDir other;
    ::setenv("TILEJIT_NVRTC_PCH", "0", 1);
    Kernel kernel = compile_nvrtc(p);
    ::unsetenv("TILEJIT_NVRTC_PCH");
    EXPECT_EQ(pch_of(kernel), "");
    return kernel.artifact().binary;
  }

  ScopedCacheDir cache_;
  fs::path include_;
};

TEST_F(NvrtcPch, CreatedByTheFirstProgramAndUsedByTheSecond) {
  REQUIRE_NVRTC_PCH();
  Kernel first = compile_nvrtc(program(include_, 1));
  ASSERT_TRUE(pch_of(first).starts_with("created ")) << pch_of(first);
  const std::string file = pch_of(first).substr(8);
  EXPECT_TRUE(fs::is_regular_file(file)) << file;
  EXPECT_EQ(fs::path(file).parent_path().parent_path(), cache_.root() / "v1" / "pch");
  EXPECT_EQ(pch_files(cache_.root()), std::vector<fs::path>{file});

  Kernel second = compile_nvrtc(program(include_, 3));
  EXPECT_EQ(pch_of(second), "used " + file);
  EXPECT_NE(second.artifact().metadata.at("log").find("using precompiled header file"),
            std::string::npos);
  // NVRTC's trace skips what came from the PCH; the key must still cover the header.
  const std::string header = fs::canonical(include_ / "pch_lib.h").string();
  EXPECT_EQ(second.artifact().dependencies, std::vector<std::string>{header});

  // The same bytes as compiles that never saw a PCH.
  EXPECT_TRUE(first.artifact().binary == binary_without_pch(program(include_, 1)));
  EXPECT_TRUE(second.artifact().binary == binary_without_pch(program(include_, 3)));
  // The cache lists no PCH as an entry, and verifies clean.
  for (const auto& info : detail::DiskCache(cache_.root()).list(/*verify=*/true)) {
    EXPECT_EQ(info.problem, "") << info.key;
  }
}

TEST_F(NvrtcPch, ADamagedPchIsNeverUsedAndIsWrittenAgain) {
  REQUIRE_NVRTC_PCH();
  Kernel first = compile_nvrtc(program(include_, 1));
  ASSERT_TRUE(pch_of(first).starts_with("created ")) << pch_of(first);
  const std::string file = pch_of(first).substr(8);
  {
    std::fstream damage(file, std::ios::in | std::ios::out | std::ios::binary);
    damage.seekp(static_cast<std::streamoff>(fs::file_size(file) / 2));
    damage << "not a precompiled header";
  }
  Kernel second = compile_nvrtc(program(include_, 2));
  EXPECT_EQ(pch_of(second), "created " + file);
  EXPECT_EQ(second.artifact().metadata.at("log").find("using precompiled header file"),
            std::string::npos);
  EXPECT_TRUE(second.artifact().binary == binary_without_pch(program(include_, 2)));

  fs::remove(file);  // gone altogether: written again too
  Kernel third = compile_nvrtc(program(include_, 4));
  EXPECT_EQ(pch_of(third), "created " + file);
  Kernel fourth = compile_nvrtc(program(include_, 5));
  EXPECT_EQ(pch_of(fourth), "used " + file);
}

TEST_F(NvrtcPch, AnEditedHeaderRetiresThePch) {
  REQUIRE_NVRTC_PCH();
  Kernel first = compile_nvrtc(program(include_, 1));
  ASSERT_TRUE(pch_of(first).starts_with("created ")) << pch_of(first);
  write_header("7.0f");
  Kernel second = compile_nvrtc(program(include_, 2));
  EXPECT_TRUE(pch_of(second).starts_with("created ")) << pch_of(second);
  // Built from the new header: the bytes of a compile that only ever saw it.
  EXPECT_TRUE(second.artifact().binary == binary_without_pch(program(include_, 2)));
  write_header("2.0f");
  EXPECT_FALSE(second.artifact().binary == binary_without_pch(program(include_, 2)));
}

TEST_F(NvrtcPch, OffWithTheEnvironmentVariableAndWithoutIncludeDirs) {
  REQUIRE_NVRTC_PCH();
  ::setenv("TILEJIT_NVRTC_PCH", "0", 1);
  Kernel off = compile_nvrtc(program(include_, 1));
  EXPECT_EQ(pch_of(off), "");
  EXPECT_EQ(off.artifact().metadata.at("log").find("precompiled header"), std::string::npos);
  EXPECT_TRUE(pch_files(cache_.root()).empty());
  ::unsetenv("TILEJIT_NVRTC_PCH");

  // No user include dirs: nothing header-heavy to precompile.
  Program plain = ProgramBuilder("no_includes")
                      .source(
                          "#include <cuda/std/type_traits>\n"
                          "extern \"C\" __global__ void k(float* x) { x[0] = 1.0f; }\n")
                      .tensor("x", "float32", {1})
                      .launch(Launch("k").with_grid({1}).with_block({1}))
                      .build();
  EXPECT_EQ(pch_of(compile_nvrtc(plain)), "");
  EXPECT_TRUE(pch_files(cache_.root()).empty());
}

// A PCH of TileLang's headers is about 270 MB: a process keeps its four most recently used.
TEST_F(NvrtcPch, AProcessKeepsAtMostFourPchs) {
  REQUIRE_NVRTC_PCH();
  std::vector<std::string> files;
  for (int prefix = 0; prefix < 5; ++prefix) {
    Program p = program(include_, 1);
    p.name = fmt::format("pch_prefix_{}", prefix);
    p.source = fmt::format("#define PREFIX {}\n", prefix) + p.source;  // another PCH each
    Kernel kernel = compile_nvrtc(p);
    ASSERT_TRUE(pch_of(kernel).starts_with("created ")) << pch_of(kernel);
    files.push_back(pch_of(kernel).substr(8));
  }
  EXPECT_FALSE(fs::exists(files[0]));
  std::vector<fs::path> kept(files.begin() + 1, files.end());
  std::vector<fs::path> found = pch_files(cache_.root());
  std::sort(kept.begin(), kept.end());
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, kept);
}

// par_compile's NVRTC workers are NVRTC instances of their own: a worker writes its PCH into a
// directory of its own and loads it for its next compile.
TEST_F(NvrtcPch, AWorkerProcessKeepsItsOwnPch) {
  REQUIRE_NVRTC_PCH();
  cuda::NvrtcOptions options;
  options.arch = cuda::CudaArch::parse("sm_90a");
  options.include_dirs = {include_.string()};
  options.list_dependencies = true;
  options.pch_dir = (cache_.root() / "v1" / "pch").string();
  const cuda::NvrtcOutput first =
      cuda::compile_cuda_in_worker(program(include_, 1).source, options);
  ASSERT_TRUE(first.pch.starts_with("created ")) << first.pch;
  const fs::path worker_dir = fs::path(first.pch.substr(8)).parent_path();
  EXPECT_NE(worker_dir.filename().string(), fmt::format("{}", ::getpid()));
  EXPECT_FALSE(worker_dir.filename().string().starts_with(fmt::format("{}-", ::getpid())));
  const cuda::NvrtcOutput second =
      cuda::compile_cuda_in_worker(program(include_, 2).source, options);
  EXPECT_EQ(second.pch, "used " + first.pch.substr(8));
  options.pch_dir.clear();
  const cuda::NvrtcOutput without = cuda::compile_cuda(program(include_, 2).source, options);
  EXPECT_TRUE(second.binary == without.binary);
  EXPECT_EQ(second.dependencies, without.dependencies);
}

// NVRTC loads a PCH only with the options it was created with, its trace option included:
// a caller that asks for no dependency list still gets a PCH it can use.
TEST_F(NvrtcPch, UsedWithoutADependencyListToo) {
  REQUIRE_NVRTC_PCH();
  cuda::NvrtcOptions options;
  options.arch = cuda::CudaArch::parse("sm_90a");
  options.include_dirs = {include_.string()};
  options.list_dependencies = false;
  options.pch_dir = (cache_.root() / "v1" / "pch").string();
  const cuda::NvrtcOutput first = cuda::compile_cuda(program(include_, 1).source, options);
  ASSERT_TRUE(first.pch.starts_with("created ")) << first.pch;
  const cuda::NvrtcOutput second = cuda::compile_cuda(program(include_, 2).source, options);
  EXPECT_EQ(second.pch, "used " + first.pch.substr(8)) << second.log;
  EXPECT_TRUE(second.dependencies.empty());
}

TEST(NvrtcPchDirectives, TheDirectivesBeforeTheFirstLineOfCode) {
  EXPECT_EQ(
      cuda::pch_directives("#include <a.h>\n\n// c\n#include \"b.h\"\nint x;\n#include <c.h>\n"),
      "#include <a.h>\n#include \"b.h\"\n");
  EXPECT_EQ(cuda::pch_directives("#define M(x) \\\n  x + 1\n#include <a.h>\nvoid f();"),
            "#define M(x) \\\n  x + 1\n#include <a.h>\n");
  EXPECT_EQ(cuda::pch_directives("  #if defined(A)\r\n#include <a.h>\n#endif"),
            "  #if defined(A)\r\n#include <a.h>\n#endif\n");
  EXPECT_EQ(cuda::pch_directives("// variant 1\n#include <a.h>\n"),
            cuda::pch_directives("// variant 2\n\n#include <a.h>\n"));
  EXPECT_EQ(cuda::pch_directives("extern \"C\" __global__ void k() {}\n#include <a.h>\n"), "");
  EXPECT_EQ(cuda::pch_directives(""), "");
}

}  // namespace
}  // namespace tilejit
