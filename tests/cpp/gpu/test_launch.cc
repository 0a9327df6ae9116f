// Launching on a GPU: symbolic grids, multi-launch programs with scalars, more than 48 KB of
// dynamic shared memory, and arguments that must be refused before any launch.
#include <dlfcn.h>

#include <cmath>

#include "gpu/gpu_support.h"

namespace tilejit {
namespace {

using namespace gpu_test;

Program vector_add() {
  return ProgramBuilder("vector_add")
      .source(kernel_source("vector_add.cu"))
      .tensor("A", "float32", {"n"})
      .tensor("B", "float32", {"n"})
      .tensor("C", "float32", {"n"})
      .launch(Launch("vector_add_kernel").with_grid({"ceildiv(n, 256)"}).with_block({256}))
      .out_idx({-1})
      .build();
}

TEST(GpuLaunch, VectorAddWithASymbolicGrid) {
  TILEJIT_REQUIRE_GPU();
  Kernel kernel = compile_for_device(vector_add());
  for (int64_t n : {1, 255, 256, 257, 4099, 1000003}) {
    std::vector<float> a = random_floats(static_cast<size_t>(n));
    std::vector<float> b = random_floats(static_cast<size_t>(n));
    Tensor A = to_device(a, {n}, DataType::parse("float32"));
    Tensor B = to_device(b, {n}, DataType::parse("float32"));
    std::vector<Tensor> outs = kernel({A, B});
    ASSERT_EQ(outs.size(), 1u);
    EXPECT_EQ(outs[0].device(), Device::cuda(0));
    std::vector<float> c = to_host<float>(outs[0]);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(c[static_cast<size_t>(i)], a[static_cast<size_t>(i)] + b[static_cast<size_t>(i)])
          << "n=" << n << " i=" << i;
    }
  }
}

TEST(GpuLaunch, VectorAddIntoAGivenOutputOnACreatedStream) {
  TILEJIT_REQUIRE_GPU();
  Program program = vector_add();
  program.out_idx.clear();
  Kernel kernel = compile_for_device(program);
  const cuda::DriverApi& api = cuda::driver();
  cuda::make_current(api, device());
  cuda::CUstream stream = nullptr;
  cuda::check(api.cuStreamCreate(&stream, 0), "cuStreamCreate");
  const int64_t n = 77777;
  std::vector<float> a = random_floats(n), b = random_floats(n);
  Tensor A = to_device(a, {n}, DataType::parse("float32"));
  Tensor B = to_device(b, {n}, DataType::parse("float32"));
  Tensor C = poisoned(DataType::parse("float32"), {n});
  kernel({A, B, C}, StreamRef(stream));
  cuda::check(api.cuStreamSynchronize(stream), "cuStreamSynchronize");
  std::vector<float> c = to_host<float>(C);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(c[i], a[i] + b[i]) << i;
  api.cuStreamDestroy(stream);
}

TEST(GpuLaunch, HostAndWrongDeviceArgumentsAreRefused) {
  TILEJIT_REQUIRE_GPU();
  Kernel kernel = compile_for_device(vector_add());
  const int64_t n = 1000;
  std::vector<float> host(n, 1.0f);
  Tensor A = to_device(host, {n}, DataType::parse("float32"));
  TensorView on_host(host.data(), "float32", {n});
  try {
    kernel({A, on_host});
    FAIL() << "a host tensor was accepted";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("B"), std::string::npos) << e.what();
  }
  // Claims to live on a device this machine does not have.
  const int missing = cuda::device_count();
  TensorView elsewhere_a(A.data(), "float32", {n}, Device::cuda(missing));
  TensorView elsewhere_b(A.data(), "float32", {n}, Device::cuda(missing));
  try {
    kernel({elsewhere_a, elsewhere_b});
    FAIL() << "a tensor on a missing device was accepted";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(missing)), std::string::npos) << e.what();
  }
  // Tensors of one call on two devices.
  TensorView other(A.data(), "float32", {n}, Device::cuda(missing));
  try {
    kernel({A, other});
    FAIL() << "tensors on two devices were accepted";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("B"), std::string::npos) << e.what();
  }
}

// softmax(scale * X) row by row, in two launches (statistics, then normalization), with
// symbolic M and N and a float scalar; compared with a double-precision reference.
TEST(GpuLaunch, TwoPassRowSoftmax) {
  TILEJIT_REQUIRE_GPU();
  Program program =
      ProgramBuilder("row_softmax")
          .source(kernel_source("row_softmax.cu"))
          .tensor("X", "float32", {"M", "N"})
          .tensor("Y", "float32", {"M", "N"})
          .tensor("stats", "float32", {"M", 2})
          .scalar("scale", "float32")
          .launch(Launch("row_stats").with_grid({"M"}).with_block({256}))
          .launch(Launch("row_normalize").with_grid({"ceildiv(N, 256)", "M"}).with_block({256}))
          .out_idx({1, 2})
          .build();
  Kernel kernel = compile_for_device(program);
  for (auto [M, N] : {std::pair<int64_t, int64_t>{1, 1}, {3, 1000}, {129, 257}, {1000, 4097}}) {
    float scale = random_floats(1, 0.5f, 3.0f)[0];
    std::vector<float> x = random_floats(static_cast<size_t>(M * N), -4.0f, 4.0f);
    Tensor X = to_device(x, {M, N}, DataType::parse("float32"));
    std::vector<Tensor> outs = kernel({X, scale});
    ASSERT_EQ(outs.size(), 2u);
    std::vector<float> y = to_host<float>(outs[0]);
    for (int64_t r = 0; r < M; ++r) {
      double m = -INFINITY;
      for (int64_t j = 0; j < N; ++j) m = std::max(m, double(scale) * x[r * N + j]);
      double sum = 0;
      for (int64_t j = 0; j < N; ++j) sum += std::exp(double(scale) * x[r * N + j] - m);
      for (int64_t j = 0; j < N; ++j) {
        double expected = std::exp(double(scale) * x[r * N + j] - m) / sum;
        ASSERT_NEAR(y[r * N + j], expected, 1e-5 * std::max(1.0, expected * 10))
            << "M=" << M << " N=" << N << " r=" << r << " j=" << j;
      }
    }
  }
}

// 160 KB of dynamic shared memory needs the kernel's limit raised (once per device, never
// lowered: a smaller call in between and a larger one after must both still run).
TEST(GpuLaunch, DynamicSharedMemoryAbove48KB) {
  TILEJIT_REQUIRE_GPU();
  if (device().max_shared_per_block_optin < 160 * 1024) {
    GTEST_SKIP() << "device allows only " << device().max_shared_per_block_optin << " bytes";
  }
  Program program = ProgramBuilder("shared_reverse")
                        .source(kernel_source("shared_reverse.cu"))
                        .tensor("in", "float32", {"blocks", "count"})
                        .tensor("out", "float32", {"blocks", "count"})
                        .launch(Launch("shared_reverse")
                                    .with_grid({"blocks"})
                                    .with_block({512})
                                    .with_dynamic_smem("count * 4"))
                        .out_idx({1})
                        .build();
  Kernel kernel = compile_for_device(program);
  for (int64_t count : {40960, 1000, 30000, 40960}) {  // 160 KB, 4 KB, 117 KB, 160 KB
    const int64_t blocks = 7;
    std::vector<float> in = random_floats(static_cast<size_t>(blocks * count));
    Tensor In = to_device(in, {blocks, count}, DataType::parse("float32"));
    std::vector<Tensor> outs = kernel({In});
    std::vector<float> out = to_host<float>(outs[0]);
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t i = 0; i < count; ++i) {
        ASSERT_EQ(out[b * count + i], in[b * count + count - 1 - i])
            << "count=" << count << " i=" << i;
      }
    }
  }
  // More than the device allows: refused before the launch, naming the launch.
  const int64_t too_many = device().max_shared_per_block_optin / 4 + 1;
  Tensor Big =
      Tensor::empty(DataType::parse("float32"), std::vector<int64_t>{1, too_many}, Device::cuda(0));
  if (!testing_nvrtc()) {
    EXPECT_THROW(kernel({Big}), Error);
    return;
  }
  try {
    kernel({Big});
    FAIL() << "launched with more shared memory than the device has";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("shared_reverse"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("dynamic_smem"), std::string::npos) << e.what();
  }
}

TEST(GpuLaunch, TensorEmptyAllocatesDeviceMemory) {
  TILEJIT_REQUIRE_GPU();
  const int64_t shape[] = {3, 5, 7};
  Tensor t = Tensor::empty(DataType::parse("bfloat16"), shape, Device::cuda(0));
  ASSERT_TRUE(t);
  EXPECT_EQ(t.device(), Device::cuda(0));
  EXPECT_EQ(t.numel(), 105);
  EXPECT_EQ(t.as_dlpack().strides, nullptr);
  EXPECT_EQ(t.dtype(), DataType::parse("bfloat16"));
  std::vector<uint16_t> values(105);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint16_t>(i * 977);
  const cuda::DriverApi& api = cuda::driver();
  cuda::make_current(api, device());
  cuda::check(api.cuMemcpyHtoD(reinterpret_cast<cuda::CUdeviceptr>(t.data()), values.data(), 210),
              "cuMemcpyHtoD");
  EXPECT_EQ(to_host<uint16_t>(t), values);
  try {
    Tensor::empty(DataType::parse("float32"), std::vector<int64_t>{4},
                  Device::cuda(cuda::device_count()));
    FAIL() << "allocated on a missing device";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(cuda::device_count())), std::string::npos)
        << e.what();
  }
}

// A context of device 0 besides its primary one, current on this thread while it lives; the
// driver's cuCtxCreate and cuCtxDestroy come from libcuda here, as tilejit itself never makes
// a context.
class SecondContext {
 public:
  SecondContext() {
    void* libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    create_ = reinterpret_cast<Create>(dlsym(libcuda, "cuCtxCreate_v2"));
    destroy_ = reinterpret_cast<Destroy>(dlsym(libcuda, "cuCtxDestroy_v2"));
    if (create_ == nullptr || destroy_ == nullptr) throw Error("libcuda lacks cuCtxCreate_v2");
    cuda::check(create_(&context_, 0, device().device), "cuCtxCreate");
  }
  ~SecondContext() { destroy_(context_); }
  SecondContext(const SecondContext&) = delete;
  SecondContext& operator=(const SecondContext&) = delete;
  cuda::CUcontext get() const { return context_; }

 private:
  using Create = cuda::CUresult (*)(cuda::CUcontext*, unsigned int, cuda::CUdevice);
  using Destroy = cuda::CUresult (*)(cuda::CUcontext);
  Create create_ = nullptr;
  Destroy destroy_ = nullptr;
  cuda::CUcontext context_ = nullptr;
};

// Both backends launch the function they looked up in one context (nvrtc: the device's primary
// context; the nvcc library: the current one); a stream of another context of the device must
// still get the kernel in that stream's context, with that context's memory, as the driver
// runs a CUkernel there.
TEST(GpuLaunch, AStreamOfAnotherContextOfTheDeviceRunsTheKernelThere) {
  TILEJIT_REQUIRE_GPU();
  Program program = vector_add();
  program.out_idx.clear();
  Kernel kernel = compile_for_device(program);
  const cuda::DriverApi& api = cuda::driver();
  const int64_t n = 5003;
  std::vector<float> a = random_floats(n), b = random_floats(n);
  {
    // First a call in the primary context, so that the executor holds its function there.
    Tensor A = to_device(a, {n}, DataType::parse("float32"));
    Tensor B = to_device(b, {n}, DataType::parse("float32"));
    Tensor C = poisoned(DataType::parse("float32"), {n});
    kernel({A, B, C});
    ASSERT_EQ(to_host<float>(C)[n - 1], a[n - 1] + b[n - 1]);
  }
  SecondContext second;  // current from here on
  cuda::CUstream stream = nullptr;
  cuda::check(api.cuStreamCreate(&stream, 0), "cuStreamCreate");
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  cuda::CUdeviceptr memory[3] = {};
  for (cuda::CUdeviceptr& m : memory) cuda::check(api.cuMemAlloc(&m, bytes), "cuMemAlloc");
  cuda::check(api.cuMemcpyHtoD(memory[0], a.data(), bytes), "cuMemcpyHtoD");
  cuda::check(api.cuMemcpyHtoD(memory[1], b.data(), bytes), "cuMemcpyHtoD");
  cuda::check(api.cuMemsetD8(memory[2], 0xFF, bytes), "cuMemsetD8");
  auto view = [&](cuda::CUdeviceptr m) {
    return TensorView(reinterpret_cast<void*>(m), "float32", {n}, Device::cuda(0));
  };
  const TensorView A = view(memory[0]), B = view(memory[1]), C = view(memory[2]);
  kernel({A, B, C}, StreamRef(stream));
  cuda::check(api.cuStreamSynchronize(stream), "cuStreamSynchronize");
  cuda::CUcontext current = nullptr;
  api.cuCtxGetCurrent(&current);
  EXPECT_EQ(current, second.get()) << "the call did not give the caller's context back";
  std::vector<float> c(static_cast<size_t>(n));
  cuda::check(api.cuMemcpyDtoH(c.data(), memory[2], bytes), "cuMemcpyDtoH");
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(c[i], a[i] + b[i]) << i;
  for (cuda::CUdeviceptr m : memory) api.cuMemFree(m);
  api.cuStreamDestroy(stream);
}

}  // namespace
}  // namespace tilejit
