// par_compile on the GPU: NVRTC compiles in worker processes (src/cuda/nvrtc_worker.h) give
// Kernels that run correctly, including Programs whose headers come from an include directory
// (their key covers the headers NVRTC reported reading).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "cache/memory_cache.h"
#include "cuda/nvrtc_worker.h"
#include "gpu/gpu_support.h"
#include "tilejit/tilejit.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

using namespace gpu_test;

// y[i] = x[i] * scale + OFFSET: `scale` in the source (a distinct Program each), OFFSET from
// offset.h when an include dir is given.
Program scale_program(int scale, const std::string& include_dir = "") {
  std::string source = include_dir.empty() ? "#define OFFSET 0.0f\n" : "#include \"offset.h\"\n";
  source += fmt::format(
      "extern \"C\" __global__ void scale_add(const float* x, float* y, int n) {{\n"
      "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
      "  if (i < n) y[i] = x[i] * {}.0f + OFFSET;\n"
      "}}\n",
      scale);
  ProgramBuilder builder(fmt::format("scale_add_{}", scale));
  builder.source(source)
      .tensor("x", "float32", {"n"})
      .tensor("y", "float32", {"n"})
      .launch(Launch("scale_add").with_grid({"ceildiv(n, 128)"}).with_block({128}))
      .out_idx({-1});
  if (!include_dir.empty()) builder.include_dir(include_dir);
  return builder.build();
}

void expect_scale_add(const Kernel& kernel, int scale, float offset) {
  const int64_t n = 3001 + scale;
  const std::vector<float> x = random_floats(static_cast<size_t>(n));
  std::vector<Tensor> outs = kernel({to_device(x, {n}, DataType::parse("float32"))});
  ASSERT_EQ(outs.size(), 1u);
  const std::vector<float> y = to_host<float>(outs[0]);
  for (int64_t i = 0; i < n; ++i) {
    // NVRTC contracts x * scale + OFFSET into one fma; near zero that differs from the
    // twice-rounded host expression by more than a few ulps, but not by 1e-5.
    const float expected = std::fma(x[static_cast<size_t>(i)], static_cast<float>(scale), offset);
    ASSERT_NEAR(y[static_cast<size_t>(i)], expected, 1e-5f)
        << "scale " << scale << ", element " << i;
  }
}

TEST(GpuParCompile, NvrtcWorkersBuildKernelsThatRun) {
  TILEJIT_REQUIRE_GPU();
  TILEJIT_REQUIRE_NVRTC_BACKEND();
  detail::TempDir cache("tilejit-gpu-par-compile");
  ::setenv("TILELANG_CACHE_DIR", cache.path().c_str(), 1);
  detail::MemoryCache::global().clear();
  detail::TempDir headers("tilejit-gpu-headers");
  std::ofstream(headers.path() / "offset.h") << "#define OFFSET 0.25f\n";

  std::vector<Program> programs;
  for (int scale = 1; scale <= 12; ++scale) {
    programs.push_back(scale_program(scale, scale % 3 == 0 ? headers.path().string() : ""));
  }
  CompileOptions options;
  options.execution_backend = "nvrtc";
  options.target = "cuda -arch=" + device_arch();
  const uint64_t spawned_before = cuda::nvrtc_worker_stats().spawned;
  const std::vector<Kernel> kernels = par_compile(programs, options, 4);
  EXPECT_GT(cuda::nvrtc_worker_stats().spawned, spawned_before) << "no NVRTC worker was used";
  ASSERT_EQ(kernels.size(), programs.size());
  for (int scale = 1; scale <= 12; ++scale) {
    expect_scale_add(kernels[static_cast<size_t>(scale - 1)], scale, scale % 3 == 0 ? 0.25f : 0.0f);
  }
  EXPECT_EQ(kernels[2].artifact().dependencies,
            std::vector<std::string>{(headers.path() / "offset.h").string()});

  // An edited header gives a new key and a rebuilt kernel, in the workers too.
  std::ofstream(headers.path() / "offset.h", std::ios::trunc) << "#define OFFSET -2.0f\n";
  const std::vector<Kernel> again = par_compile(programs, options, 4);
  expect_scale_add(again[2], 3, -2.0f);
  EXPECT_NE(again[2].cache_key(), kernels[2].cache_key());
  expect_scale_add(again[3], 4, 0.0f);
  EXPECT_EQ(again[3].cache_key(), kernels[3].cache_key());
  ::unsetenv("TILELANG_CACHE_DIR");
}

}  // namespace
}  // namespace tilejit
