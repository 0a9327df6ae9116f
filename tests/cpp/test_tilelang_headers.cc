// Programs that include TileLang's device headers (tl_templates, and through them CUTLASS/cute)
// compile for sm_90a with both CUDA backends, and the headers they read key the cache. Needs
// the tilelang Python package's headers only, not its Python code: found from
// $TILEJIT_TILELANG_DIR (the package directory), else from `python3` (importlib's find_spec,
// which does not import tilelang). No GPU needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cache_test_support.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

namespace fs = std::filesystem;

// The installed tilelang package directory, or empty with `why` saying what was looked at.
fs::path tilelang_dir(std::string* why) {
  if (const char* dir = std::getenv("TILEJIT_TILELANG_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  std::optional<fs::path> python = detail::find_program("python3");
  if (!python) {
    *why =
        "tilelang is not installed here: TILEJIT_TILELANG_DIR is unset and no python3 is on PATH";
    return {};
  }
  const detail::ProcessResult found =
      detail::run_process({python->string(), "-c",
                           "import importlib.util as u; s = u.find_spec('tilelang'); "
                           "print(s.submodule_search_locations[0] if s else '')"},
                          std::chrono::seconds(60));
  std::string dir = found.output;
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == '\r')) dir.pop_back();
  if (found.exit_code != 0 || dir.empty()) {
    *why = fmt::format(
        "tilelang is not installed here: {} finds no 'tilelang' package (set "
        "TILEJIT_TILELANG_DIR to its directory)",
        python->string());
    return {};
  }
  return dir;
}

#define REQUIRE_TILELANG_HEADERS(dir)                                  \
  std::string why_;                                                    \
  const fs::path dir = tilelang_dir(&why_);                            \
  if (dir.empty()) GTEST_SKIP() << why_;                               \
  if (!fs::exists(dir / "src" / "tl_templates" / "cuda" / "common.h")) \
  GTEST_SKIP() << "the tilelang package at " << dir << " has no tl_templates headers"

// A kernel on TileLang's half_t, as TileLang's lowered kernels use it; nvrtc_std.h is TileLang's
// NVRTC prelude (a no-op under nvcc).
Program tl_program(const fs::path& tilelang, const std::string& backend) {
  ProgramBuilder builder("tl_scale_" + backend);
  builder
      .source(
          "#include <tl_templates/cuda/nvrtc_std.h>\n"
          "#include <tl_templates/cuda/common.h>\n"
          "\n"
          "extern \"C\" __global__ void tl_scale(half_t* __restrict__ x, int n) {\n"
          "  const int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
          "  if (i < n) x[i] = x[i] * half_t(2.0f) + half_t(1.0f);\n"
          "}\n")
      .tensor("x", "float16", {"n"})
      .launch(Launch("tl_scale").with_grid({"ceildiv(n, 256)"}).with_block({256}))
      .include_dir((tilelang / "src").string())
      .include_dir((tilelang / "3rdparty" / "cutlass" / "include").string());
  // What TileLang's own NVRTC adapter passes: its headers declare unannotated functions.
  if (backend == "nvrtc") builder.compile_flag("-default-device").compile_flag("-w");
  return builder.build();
}

void expect_compiles_reading_tl_headers(const fs::path& tilelang, const std::string& backend) {
  testing::ScopedCacheDir cache;
  CompileOptions options;
  options.execution_backend = backend;
  options.target = "cuda -arch=sm_90a";
  Kernel kernel;
  try {
    kernel = compile(tl_program(tilelang, backend), options);
  } catch (const NotAvailableError& e) {
    GTEST_SKIP() << e.what();  // no NVRTC, or no nvcc
  }
  const CompiledArtifact& artifact = kernel.artifact();
  EXPECT_FALSE(artifact.binary.empty());
  const std::vector<std::string>& headers = artifact.dependencies;
  const std::string common = fs::canonical(tilelang / "src/tl_templates/cuda/common.h").string();
  EXPECT_NE(std::find(headers.begin(), headers.end(), common), headers.end())
      << backend << ": " << headers.size() << " headers recorded";
  EXPECT_TRUE(std::any_of(headers.begin(), headers.end(), [](const std::string& h) {
    return h.find("/cutlass/include/cutlass/") != std::string::npos;
  })) << backend;
}

TEST(TilelangHeaders, CompileWithNvrtcForSm90a) {
  REQUIRE_TILELANG_HEADERS(tilelang);
  expect_compiles_reading_tl_headers(tilelang, "nvrtc");
}

TEST(TilelangHeaders, CompileWithNvccForSm90a) {
  REQUIRE_TILELANG_HEADERS(tilelang);
  expect_compiles_reading_tl_headers(tilelang, "nvcc");
}

}  // namespace
}  // namespace tilejit
