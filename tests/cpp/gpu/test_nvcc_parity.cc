// The nvcc backend against the nvrtc backend on the GPU: every Program of the codegen golden
// set (test_codegen_programs.h: one launch, symbolic grid, several launches, TMA tiled and
// im2col descriptors shared by two launches, an L2 window, clusters, a cooperative launch,
// PDL, dynamic shared memory above 48 KB) runs on both backends with the same inputs. Every
// output element is checked against a plain host reference; integer results must agree bit
// for bit between the backends, float results within one unit in the last place.
#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "backend/shared_library.h"
#include "gpu/gpu_support.h"
#include "test_codegen_programs.h"
#include "toolchain/toolchain.h"

namespace tilejit {
namespace {

using namespace gpu_test;

constexpr std::array<const char*, 2> kBackends = {"nvrtc", "nvcc"};

#define TILEJIT_REQUIRE_GPU_AND_NVCC()                                                         \
  do {                                                                                         \
    TILEJIT_REQUIRE_GPU();                                                                     \
    if (!detail::find_program("nvcc") && !std::filesystem::exists("/usr/local/cuda/bin/nvcc")) \
      GTEST_SKIP() << "nvcc is not installed";                                                 \
  } while (0)

Program golden(const std::string& name) {
  for (const testing::GoldenCase& c : testing::cuda_golden_cases()) {
    if (c.name == name) return c.program;
  }
  ADD_FAILURE() << "no golden case " << name;
  return {};
}

Kernel compile_with(const Program& program, const char* backend) {
  CompileOptions options;
  options.execution_backend = backend;
  options.target = "cuda -arch=" + device_arch();
  Kernel kernel = compile(program, options);
  EXPECT_EQ(kernel.artifact().backend, backend);
  return kernel;
}

// Runs `run(kernel)` for the Program compiled by each backend; returns {nvrtc, nvcc}.
template <class Run>
auto on_both_backends(const Program& program, Run run) {
  using Result = decltype(run(std::declval<const Kernel&>()));
  std::array<Result, 2> results;
  for (size_t i = 0; i < kBackends.size(); ++i) {
    SCOPED_TRACE(kBackends[i]);
    results[i] = run(compile_with(program, kBackends[i]));
  }
  return results;
}

uint32_t bits(float v) {
  uint32_t b = 0;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// Equal, or adjacent floats of the same sign (one unit in the last place).
bool within_one_ulp(float a, float b) {
  if (a == b) return true;
  if (std::isnan(a) || std::isnan(b) || std::signbit(a) != std::signbit(b)) return false;
  const uint32_t x = bits(a), y = bits(b);
  return (x > y ? x - y : y - x) <= 1;
}

void expect_parity(const std::array<std::vector<float>, 2>& out, const std::vector<float>& want,
                   const char* what) {
  ASSERT_EQ(out[0].size(), want.size()) << what;
  ASSERT_EQ(out[1].size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(out[0][i], want[i]) << what << " nvrtc, element " << i;
    ASSERT_TRUE(within_one_ulp(out[0][i], out[1][i]))
        << what << " element " << i << ": nvrtc " << out[0][i] << ", nvcc " << out[1][i];
  }
}

TEST(NvccParity, VectorAddOddSizesWithAnAllocatedOutput) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  for (int64_t n : {1, 1000, 1000003}) {
    const std::vector<float> a = random_floats(n), b = random_floats(n);
    std::vector<float> want(a.size());
    for (size_t i = 0; i < a.size(); ++i) want[i] = a[i] + b[i];
    const Tensor A = to_device(a, {n}, DataType::parse("float32"));
    const Tensor B = to_device(b, {n}, DataType::parse("float32"));
    auto out = on_both_backends(golden("single_launch"), [&](const Kernel& k) {
      std::vector<Tensor> outs = k({A, B});
      return to_host<float>(outs.at(0));
    });
    expect_parity(out, want, "C");
  }
}

TEST(NvccParity, SymbolicTwoDimensionalGridWithInt64SymbolsAndAFloatScalar) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  const int64_t m = 333, n = 517;
  const float alpha = 0.75f;
  const std::vector<float> x = random_floats(m * n);
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = alpha * x[i];
  const Tensor X = to_device(x, {m, n}, DataType::parse("float32"));
  auto out = on_both_backends(golden("symbolic_grid"), [&](const Kernel& k) {
    Tensor Y = poisoned(DataType::parse("float32"), {m, n});
    k({X, Y, alpha});
    return to_host<float>(Y);
  });
  expect_parity(out, want, "Y");
}

TEST(NvccParity, ThreeLaunchesRunInOrderWithExplicitArgs) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  const int64_t n = 1001;
  const float value = 2.5f;
  auto out = on_both_backends(golden("multi_launch"), [&](const Kernel& k) {
    Tensor X = poisoned(DataType::parse("float32"), {n});
    Tensor Y = poisoned(DataType::parse("float32"), {n});
    k({X, Y, value});
    return to_host<float>(Y);
  });
  expect_parity(out, std::vector<float>(n, value + 1.0f), "Y");
}

TEST(NvccParity, TiledAndIm2colDescriptorsSharedByTwoLaunches) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  const int64_t m = 256, k = 128, batch = 2, h = 8, w = 8;
  const Tensor A =
      to_device(std::vector<uint16_t>(m * k, 0x3C00), {m, k}, DataType::parse("float16"));
  const Tensor X = to_device(std::vector<uint16_t>(batch * h * w * 64, 0x3C00), {batch, h, w, 64},
                             DataType::parse("float16"));
  auto out = on_both_backends(golden("tma_shared"), [&](const Kernel& kernel) {
    Tensor result = poisoned(DataType::parse("float32"), {m});
    kernel({A, X, result});
    return to_host<float>(result);
  });
  // Each kernel adds 1 when its two descriptors arrive as distinct parameters.
  expect_parity(out, std::vector<float>(m, 2.0f), "out");
}

TEST(NvccParity, L2WindowAroundALaunch) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  const int64_t n = 100003;
  const std::vector<float> a = random_floats(n);
  std::vector<float> want(a.size());
  for (int64_t i = 0; i < n; ++i) want[i] = a[i] + a[(i + 1) % n];
  const Tensor A = to_device(a, {n}, DataType::parse("float32"));
  auto out = on_both_backends(golden("l2_window"), [&](const Kernel& k) {
    Tensor B = poisoned(DataType::parse("float32"), {n});
    k({A, B});
    return to_host<float>(B);
  });
  expect_parity(out, want, "B");
}

std::vector<float> run_cluster_program(const Kernel& kernel, const std::vector<float>& x) {
  Tensor X = to_device(x, {static_cast<int64_t>(x.size())}, DataType::parse("float32"));
  kernel({X});
  return to_host<float>(X);
}

TEST(NvccParity, ClustersOfTwoAndEightBlocks) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  if (device().cc_major < 9) GTEST_SKIP() << "clusters need compute capability 9.0";
  Program program = golden("cluster");
  program.launches[1].cluster = {8, 1, 1};  // portable: both backends launch it as is
  const int64_t n = 5000;                   // within the second launch's 64 x 128 threads
  const std::vector<float> x = random_floats(n);
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = x[i] * 2.0f + 1.0f;
  auto out = on_both_backends(program, [&](const Kernel& k) { return run_cluster_program(k, x); });
  expect_parity(out, want, "X");
}

// A cluster of 16 blocks is beyond the portable 8: the generated init() opts the kernel in.
TEST(NvccParity, NvccLaunchesANonPortableClusterOfSixteen) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  if (device().cc_major < 9) GTEST_SKIP() << "clusters need compute capability 9.0";
  const int64_t n = 5000;
  const std::vector<float> x = random_floats(n);
  const std::vector<float> got = run_cluster_program(compile_with(golden("cluster"), "nvcc"), x);
  ASSERT_EQ(got.size(), x.size());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(got[i], x[i] * 2.0f + 1.0f) << "element " << i;
}

TEST(NvccParity, CooperativeLaunchIntegerResultsBitForBit) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  if (!device().cooperative_launch) GTEST_SKIP() << "device has no cooperative launch";
  const int64_t n = 20000;  // the grid is min(ceildiv(n, 256), 132) blocks
  std::vector<int32_t> in(n);
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> dist(-700000000, 700000000);
  for (int32_t& v : in) v = dist(rng);
  const Tensor In = to_device(in, {n}, DataType::parse("int32"));
  auto out = on_both_backends(golden("cooperative"), [&](const Kernel& k) {
    std::vector<Tensor> outs = k({In});
    return to_host<int32_t>(outs.at(0));
  });
  for (int64_t i = 0; i < n; ++i) {
    const int32_t want = static_cast<int32_t>(static_cast<uint32_t>(in[i]) * 3u);
    ASSERT_EQ(out[0][i], want) << "nvrtc, element " << i;
    ASSERT_EQ(out[1][i], out[0][i]) << "element " << i;
  }
}

TEST(NvccParity, ProgrammaticDependentLaunch) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  if (device().cc_major < 9) GTEST_SKIP() << "PDL needs compute capability 9.0";
  const int64_t n = 4097;
  std::vector<float> want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = static_cast<float>(i) * 0.5f;
  auto out = on_both_backends(golden("pdl"), [&](const Kernel& k) {
    Tensor X = poisoned(DataType::parse("float32"), {n});
    Tensor Y = poisoned(DataType::parse("float32"), {n});
    k({X, Y});
    return to_host<float>(Y);
  });
  expect_parity(out, want, "Y");
}

TEST(NvccParity, DynamicSharedMemoryConstantAndSymbolicAbove48KB) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  const int64_t n = 30001;  // the second launch asks for n * 4 = 120004 bytes
  if (device().max_shared_per_block_optin < n * 4) GTEST_SKIP() << "device has too little smem";
  const std::vector<float> a = random_floats(n);
  std::vector<float> want(a.size());
  for (size_t i = 0; i < a.size(); ++i) want[i] = a[i] + a[i];
  const Tensor A = to_device(a, {n}, DataType::parse("float32"));
  auto out = on_both_backends(golden("dynamic_smem"), [&](const Kernel& k) {
    Tensor B = poisoned(DataType::parse("float32"), {n});
    k({A, B});
    return to_host<float>(B);
  });
  expect_parity(out, want, "B");
}

TEST(NvccParity, AnEmptyProblemLaunchesNothingOnBothBackends) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  const Tensor A = to_device(std::vector<float>{}, {0}, DataType::parse("float32"));
  const Tensor B = to_device(std::vector<float>{}, {0}, DataType::parse("float32"));
  for (const char* backend : kBackends) {
    SCOPED_TRACE(backend);
    std::vector<Tensor> outs = compile_with(golden("single_launch"), backend)({A, B});
    EXPECT_EQ(to_host<float>(outs.at(0)).size(), 0u);
  }
}

TEST(NvccParity, ALaunchErrorNamesTheKernel) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  // 2 x 1024 threads per block cannot launch; nvcc's wrapper reports the driver's error with
  // the kernel's name, as the nvrtc backend does.
  Program program = golden("single_launch");
  program.launches[0].block = {Expr("n"), Expr(1024), Expr(1)};
  const Tensor A = to_device(random_floats(2), {2}, DataType::parse("float32"));
  const Tensor B = to_device(random_floats(2), {2}, DataType::parse("float32"));
  try {
    compile_with(program, "nvcc")({A, B});
    FAIL() << "expected CudaError";
  } catch (const CudaError& e) {
    EXPECT_NE(std::string(e.what()).find("vector_add"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cuLaunchKernelEx"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("CUDA_ERROR_"), std::string::npos) << e.what();
  }
}

// The generated library used on its own, as an export is: init() on this thread, then call()
// on a thread that has no current context, on the default stream. The driver launches such a
// launch in the current context; the wrapper binds the runtime's device's primary context
// first, as the runtime's own launch does.
TEST(NvccParity, TheLibraryLaunchesOnAThreadWithNoCurrentContext) {
  TILEJIT_REQUIRE_GPU_AND_NVCC();
  const Kernel kernel = compile_with(golden("single_launch"), "nvcc");
  const detail::SharedLibrary library = detail::load_artifact_library(kernel.artifact(), "nvcc");
  const auto init = reinterpret_cast<int (*)()>(library.symbol("init"));
  const auto call_packed =
      reinterpret_cast<int (*)(void* const*, void*)>(library.symbol("call_packed"));
  const auto get_last_error = reinterpret_cast<const char* (*)()>(library.symbol("get_last_error"));
  ASSERT_EQ(init(), 0) << get_last_error();

  const int32_t n = 3001;
  const std::vector<float> a = random_floats(n), b = random_floats(n);
  const Tensor A = to_device(a, {n}, DataType::parse("float32"));
  const Tensor B = to_device(b, {n}, DataType::parse("float32"));
  const Tensor C = poisoned(DataType::parse("float32"), {n});
  void* pointers[3] = {A.data(), B.data(), C.data()};
  int32_t count = n;
  void* const args[4] = {&pointers[0], &pointers[1], &pointers[2], &count};
  int status = -1;
  std::string error;
  bool had_context = true;
  std::thread caller([&] {
    cuda::CUcontext current = nullptr;
    cuda::driver().cuCtxGetCurrent(&current);
    had_context = current != nullptr;
    status = call_packed(args, nullptr);
    if (status != 0) error = get_last_error();
  });
  caller.join();
  ASSERT_FALSE(had_context) << "a new thread started with a current context";
  ASSERT_EQ(status, 0) << error;
  const std::vector<float> c = to_host<float>(C);
  for (int32_t i = 0; i < n; ++i) ASSERT_EQ(c[i], a[i] + b[i]) << "element " << i;
}

}  // namespace
}  // namespace tilejit
