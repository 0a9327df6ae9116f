// Launch attributes on a GPU: an L2 persistence window set for one launch and undone after
// it, a 2x1x1 cluster, and a cooperative launch whose blocks meet at a grid-wide barrier.
#include <cmath>

#include "cuda/l2.h"
#include "gpu/gpu_support.h"

namespace tilejit {
namespace {

using namespace gpu_test;

struct Observed {
  int calls = 0;
  cuda::CUaccessPolicyWindow window{};
  size_t limit = 0;
};

void observe(cuda::CUstream stream, void* user) {
  auto* seen = static_cast<Observed*>(user);
  const cuda::DriverApi& api = cuda::driver();
  cuda::CUstreamAttrValue value{};
  cuda::check(
      api.cuStreamGetAttribute(stream, cuda::CU_STREAM_ATTRIBUTE_ACCESS_POLICY_WINDOW, &value),
      "cuStreamGetAttribute");
  seen->window = value.accessPolicyWindow;
  cuda::check(api.cuCtxGetLimit(&seen->limit, cuda::CU_LIMIT_PERSISTING_L2_CACHE_SIZE),
              "cuCtxGetLimit");
  ++seen->calls;
}

TEST(GpuAttributes, L2PersistenceWindowIsSetDuringAndResetAfter) {
  TILEJIT_REQUIRE_GPU();
  TILEJIT_REQUIRE_NVRTC_BACKEND();  // the observer hook is nvrtc's
  const cuda::DeviceInfo& info = device();
  if (info.max_persisting_l2_bytes == 0) GTEST_SKIP() << "device has no persisting L2";
  const cuda::DriverApi& api = cuda::driver();
  cuda::make_current(api, info);
  cuda::CUstream stream = nullptr;
  cuda::check(api.cuStreamCreate(&stream, 0), "cuStreamCreate");
  // A distinct previous limit, so that restoring it is observable. The driver rounds the
  // limit up to its own granularity, so the value to restore is the one read back.
  cuda::check(api.cuCtxSetLimit(cuda::CU_LIMIT_PERSISTING_L2_CACHE_SIZE, 1 << 20), "cuCtxSetLimit");
  size_t previous = 0;
  cuda::check(api.cuCtxGetLimit(&previous, cuda::CU_LIMIT_PERSISTING_L2_CACHE_SIZE),
              "cuCtxGetLimit");
  ASSERT_GE(previous, size_t{1} << 20);

  for (const char* bytes : {"n * 4", "n * 4 * 100000"}) {
    L2Window window;
    window.param = "x";
    window.num_bytes = Expr(bytes);
    window.hit_ratio = 0.625;
    Program program = ProgramBuilder("l2_scale")
                          .source(kernel_source("l2_scale.cu"))
                          .tensor("x", "float32", {"n"})
                          .tensor("y", "float32", {"n"})
                          .scalar("a", "float32")
                          .launch(Launch("scale")
                                      .with_grid({"ceildiv(n, 256)"})
                                      .with_block({256})
                                      .with_l2_window(window))
                          .out_idx({1})
                          .build();
    Kernel kernel = compile_for_device(program);
    const int64_t n = 1 << 20;
    std::vector<float> x = random_floats(n);
    Tensor X = to_device(x, {n}, DataType::parse("float32"));
    Observed seen;
    cuda::set_l2_observer(observe, &seen);
    std::vector<Tensor> outs = kernel({X, 1.5f}, StreamRef(stream));
    cuda::set_l2_observer(nullptr, nullptr);
    cuda::check(api.cuStreamSynchronize(stream), "cuStreamSynchronize");

    size_t requested = std::string(bytes) == "n * 4" ? size_t(n) * 4 : size_t(n) * 4 * 100000;
    size_t expected = std::min({requested, size_t(info.max_persisting_l2_bytes),
                                size_t(info.max_access_policy_window_bytes)});
    ASSERT_EQ(seen.calls, 1);
    EXPECT_EQ(seen.window.base_ptr, X.data());
    EXPECT_EQ(seen.window.num_bytes, expected) << bytes;
    EXPECT_FLOAT_EQ(seen.window.hitRatio, 0.625f);
    EXPECT_EQ(seen.window.hitProp, cuda::CU_ACCESS_PROPERTY_PERSISTING);
    EXPECT_EQ(seen.window.missProp, cuda::CU_ACCESS_PROPERTY_STREAMING);
    EXPECT_GE(seen.limit, expected);  // rounded up to the driver's granularity
    EXPECT_NE(seen.limit, previous);

    cuda::CUstreamAttrValue after{};
    cuda::check(
        api.cuStreamGetAttribute(stream, cuda::CU_STREAM_ATTRIBUTE_ACCESS_POLICY_WINDOW, &after),
        "cuStreamGetAttribute");
    EXPECT_EQ(after.accessPolicyWindow.num_bytes, 0u);
    size_t limit = 0;
    cuda::check(api.cuCtxGetLimit(&limit, cuda::CU_LIMIT_PERSISTING_L2_CACHE_SIZE),
                "cuCtxGetLimit");
    EXPECT_EQ(limit, previous);

    std::vector<float> y = to_host<float>(outs[0]);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], 1.5f * x[i]) << i;
  }
  cuda::check(api.cuCtxSetLimit(cuda::CU_LIMIT_PERSISTING_L2_CACHE_SIZE, 0), "cuCtxSetLimit");
  api.cuStreamDestroy(stream);
}

TEST(GpuAttributes, ClusterLaunchReadsClusterRank) {
  TILEJIT_REQUIRE_GPU();
  if (device().cc_major < 9) GTEST_SKIP() << "clusters need sm_90";
  Program program =
      ProgramBuilder("cluster_rank")
          .source(kernel_source("cluster_rank.cu"))
          .tensor("ranks", "int32", {"blocks"})
          .tensor("sizes", "int32", {"blocks"})
          .launch(
              Launch("cluster_rank").with_grid({"blocks"}).with_block({32}).with_cluster({2, 1, 1}))
          .build();
  Kernel kernel = compile_for_device(program);
  const DataType i32 = DataType::parse("int32");
  for (int64_t blocks : {2, 8, 130}) {
    Tensor ranks = poisoned(i32, {blocks});
    Tensor sizes = poisoned(i32, {blocks});
    kernel({ranks, sizes});
    std::vector<int32_t> r = to_host<int32_t>(ranks);
    std::vector<int32_t> s = to_host<int32_t>(sizes);
    for (int64_t b = 0; b < blocks; ++b) {
      ASSERT_EQ(r[b], b % 2) << "blocks=" << blocks << " b=" << b;
      ASSERT_EQ(s[b], 2) << "blocks=" << blocks << " b=" << b;
    }
  }
  Tensor ranks = poisoned(i32, {7});
  Tensor sizes = poisoned(i32, {7});
  if (!testing_nvrtc()) {
    EXPECT_THROW(kernel({ranks, sizes}), Error);
    return;
  }
  try {
    kernel({ranks, sizes});
    FAIL() << "a grid of 7 launched with clusters of 2";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("cluster"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cluster_rank"), std::string::npos) << e.what();
  }
}

TEST(GpuAttributes, CooperativeLaunchWithAGridBarrier) {
  TILEJIT_REQUIRE_GPU();
  if (!device().cooperative_launch) GTEST_SKIP() << "device has no cooperative launch";
  Program program =
      ProgramBuilder("grid_sum")
          .source(kernel_source("grid_sync.cu"))
          .tensor("in", "float32", {"n"})
          .tensor("partial", "float32", {"blocks"})
          .tensor("out", "float32", {"blocks"})
          .tensor("arrived", "uint32", {1})
          .launch(Launch("grid_sum").with_grid({"blocks"}).with_block({256}).with_cooperative())
          .build();
  Kernel kernel = compile_for_device(program);
  const DataType f32 = DataType::parse("float32");
  const int64_t blocks = device().multiprocessors;
  const int64_t n = 1000003;
  std::vector<float> in = random_floats(n);
  Tensor In = to_device(in, {n}, f32);
  Tensor Partial = poisoned(f32, {blocks});
  Tensor Out = poisoned(f32, {blocks});
  Tensor Arrived = to_device(std::vector<uint32_t>{0}, {1}, DataType::parse("uint32"));
  kernel({In, Partial, Out, Arrived});
  std::vector<float> out = to_host<float>(Out);
  double expected = 0;
  for (float v : in) expected += v;
  for (int64_t b = 0; b < blocks; ++b) {
    // Every block read every partial: all totals are the same sum, in the same order.
    ASSERT_EQ(out[b], out[0]) << b;
  }
  EXPECT_NEAR(out[0], expected, 1e-2);
  EXPECT_EQ(to_host<uint32_t>(Arrived)[0], uint32_t(blocks));

  // More blocks than can be co-resident: the driver refuses, and the error names the kernel.
  const int64_t too_many = blocks * 64;
  Tensor P2 = poisoned(f32, {too_many});
  Tensor O2 = poisoned(f32, {too_many});
  Tensor A2 = to_device(std::vector<uint32_t>{0}, {1}, DataType::parse("uint32"));
  try {
    kernel({In, P2, O2, A2});
    FAIL() << "a cooperative grid of " << too_many << " blocks launched";
  } catch (const CudaError& e) {
    // The nvcc library's error carries the CUresult in its message, not in code().
    if (testing_nvrtc()) {
      EXPECT_EQ(e.code(), cuda::CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE) << e.what();
    }
    EXPECT_NE(std::string(e.what()).find("CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("grid_sum"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cuLaunchKernelEx"), std::string::npos) << e.what();
  }
}

// The second launch may start before the first finishes (PDL); griddepcontrol.wait in it
// still orders its reads after the first launch's writes.
TEST(GpuAttributes, ProgrammaticDependentLaunch) {
  TILEJIT_REQUIRE_GPU();
  if (device().cc_major < 9) GTEST_SKIP() << "PDL needs sm_90";
  Program program =
      ProgramBuilder("pdl_chain")
          .source(kernel_source("pdl_chain.cu"))
          .tensor("x", "float32", {"n"})
          .tensor("mid", "float32", {"n"})
          .tensor("y", "float32", {"n"})
          .launch(Launch("produce").with_grid({"ceildiv(n, 256)"}).with_block({256}))
          .launch(Launch("consume").with_grid({"ceildiv(n, 256)"}).with_block({256}).with_pdl())
          .out_idx({1, 2})
          .build();
  Kernel kernel = compile_for_device(program);
  for (int64_t n : {1, 1000, 3000017}) {
    std::vector<float> x = random_floats(static_cast<size_t>(n));
    Tensor X = to_device(x, {n}, DataType::parse("float32"));
    std::vector<Tensor> outs = kernel({X});
    std::vector<float> y = to_host<float>(outs[1]);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(y[i], 3.0f * (x[i] + 1.0f)) << "n=" << n << " i=" << i;
  }
}

// A bad shape in a later launch is caught before the first launch is issued.
TEST(GpuAttributes, NoLaunchWhenALaterLaunchIsInvalid) {
  TILEJIT_REQUIRE_GPU();
  TILEJIT_REQUIRE_NVRTC_BACKEND();
  if (device().cc_major < 9) GTEST_SKIP() << "clusters need sm_90";
  Program program =
      ProgramBuilder("pdl_chain")
          .source(kernel_source("pdl_chain.cu"))
          .tensor("x", "float32", {"n"})
          .tensor("mid", "float32", {"n"})
          .tensor("y", "float32", {"n"})
          .launch(Launch("produce").with_grid({"ceildiv(n, 256)"}).with_block({256}))
          .launch(Launch("consume").with_grid({"n"}).with_block({256}).with_cluster({2, 1, 1}))
          .build();
  Kernel kernel = compile_for_device(program);
  const DataType f32 = DataType::parse("float32");
  const int64_t n = 3;  // consume's grid of 3 is not a multiple of its cluster of 2
  Tensor X = to_device(random_floats(n), {n}, f32);
  Tensor Mid = poisoned(f32, {n});
  Tensor Y = poisoned(f32, {n});
  try {
    kernel({X, Mid, Y});
    FAIL() << "launched a grid of 3 with clusters of 2";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("consume"), std::string::npos) << e.what();
  }
  for (float v : to_host<float>(Mid)) EXPECT_TRUE(std::isnan(v)) << "produce ran: " << v;
}

}  // namespace
}  // namespace tilejit
