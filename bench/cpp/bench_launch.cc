// Host time per call of tilejit's C++ call path against the floor: raw cuLaunchKernelEx of the
// same kernel with precomputed arguments. Bursts of 200 calls on one stream, the stream
// synchronized outside the timed region, the median over many bursts, every variant in the
// same run and interleaved round by round so that drift hits them alike.
//
//   (a) 3 tensors + 1 scalar, grid ceildiv(n, 256)       vs one raw launch
//   (b) (a) plus one TMA descriptor (cached encode)       vs one raw launch of the same kernel
//   (c) a 3-launch program                                vs three raw launches
//
// "executor" rows time the launch plan alone (arguments bound once, outside the loop), so the
// difference to the full call is the Binder's share. Prints a table; exits 0 with a message
// when no GPU is present.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "compile/kernel_state.h"
#include "cuda/driver.h"
#include "tilejit/tilejit.h"

namespace {

using namespace tilejit;
using Clock = std::chrono::steady_clock;

constexpr int kBurst = 200;
constexpr int kRounds = 60;
constexpr int64_t kN = 4096;

const char* kSource = R"(
#include <tilejit/cuda_device.h>
extern "C" __global__ void axpy(const float* __restrict__ x, const float* __restrict__ y,
                                float* __restrict__ out, float alpha, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = alpha * x[i] + y[i];
}
extern "C" __global__ void axpy_tma(const float* __restrict__ x, const float* __restrict__ y,
                                    float* __restrict__ out, float alpha, int n,
                                    const __grid_constant__ CUtensorMap x_desc) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = alpha * x[i] + y[i];
}
extern "C" __global__ void step1(const float* x, const float* y, float* t, float alpha, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) t[i] = alpha * x[i] + y[i];
}
extern "C" __global__ void step2(const float* t, const float* y, float* u, float alpha, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) u[i] = alpha * t[i] + y[i];
}
extern "C" __global__ void step3(const float* u, const float* x, float* out, float alpha, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = alpha * u[i] + x[i];
}
)";

struct Variant {
  std::string name;
  std::function<void()> call;  // one call (one burst element)
  std::vector<double> per_call_us;
};

const cuda::DriverApi* g_api = nullptr;
cuda::CUstream g_stream = nullptr;

double time_burst(const std::function<void()>& call) {
  auto start = Clock::now();
  for (int i = 0; i < kBurst; ++i) call();
  auto end = Clock::now();
  cuda::check(g_api->cuStreamSynchronize(g_stream), "cuStreamSynchronize");
  return std::chrono::duration<double, std::micro>(end - start).count() / kBurst;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Kernel compile_program(const Program& program, const std::string& arch) {
  CompileOptions options;
  options.execution_backend = "nvrtc";
  options.target = "cuda -arch=" + arch;
  return compile(program, options);
}

// A raw launch of `name` from the same cubin the Kernel loaded.
struct RawKernel {
  cuda::CUlibrary library = nullptr;
  cuda::CUkernel kernel = nullptr;
};
RawKernel load_raw(const Kernel& k, const char* name) {
  RawKernel raw;
  cuda::check(g_api->cuLibraryLoadData(&raw.library, k.artifact().binary.data(), nullptr, nullptr,
                                       0, nullptr, nullptr, 0),
              "cuLibraryLoadData");
  cuda::check(g_api->cuLibraryGetKernel(&raw.kernel, raw.library, name), "cuLibraryGetKernel");
  return raw;
}

}  // namespace

int main() {
  std::string why;
  if (!cuda::driver_available(&why) || cuda::device_count() == 0) {
    std::printf("bench_launch: skipped: %s\n", why.empty() ? "no CUDA device" : why.c_str());
    return 0;
  }
  g_api = &cuda::driver();
  const cuda::DeviceInfo& device = cuda::device_info(0);
  cuda::make_current(*g_api, device);
  cuda::check(g_api->cuStreamCreate(&g_stream, 0), "cuStreamCreate");
  std::string arch =
      fmt::format("sm_{}{}{}", device.cc_major, device.cc_minor, device.cc_major >= 9 ? "a" : "");
  const DataType f32 = DataType::parse("float32");

  TmaDescriptor x_desc;
  x_desc.name = "x_desc";
  x_desc.buffer = "x";
  x_desc.rank = 1;
  x_desc.box_dims = {256};
  auto axpy_program = [&](const char* kernel, bool tma) {
    ProgramBuilder b(kernel);
    b.source(kSource)
        .tensor("x", "float32", {"n"})
        .tensor("y", "float32", {"n"})
        .tensor("out", "float32", {"n"})
        .scalar("alpha", "float32")
        .launch(Launch(kernel).with_grid({"ceildiv(n, 256)"}).with_block({256}));
    if (tma) b.tma(x_desc);
    return b.build();
  };
  Kernel a = compile_program(axpy_program("axpy", false), arch);
  Kernel b = compile_program(axpy_program("axpy_tma", true), arch);
  Program three = ProgramBuilder("three")
                      .source(kSource)
                      .tensor("x", "float32", {"n"})
                      .tensor("y", "float32", {"n"})
                      .tensor("t", "float32", {"n"})
                      .tensor("u", "float32", {"n"})
                      .tensor("out", "float32", {"n"})
                      .scalar("alpha", "float32")
                      .launch(Launch("step1").with_grid({"ceildiv(n, 256)"}).with_block({256}))
                      .launch(Launch("step2").with_grid({"ceildiv(n, 256)"}).with_block({256}))
                      .launch(Launch("step3").with_grid({"ceildiv(n, 256)"}).with_block({256}))
                      .build();
  Kernel c = compile_program(three, arch);

  Tensor x = Tensor::empty(f32, std::vector<int64_t>{kN}, Device::cuda(0));
  Tensor y = Tensor::empty(f32, std::vector<int64_t>{kN}, Device::cuda(0));
  Tensor t = Tensor::empty(f32, std::vector<int64_t>{kN}, Device::cuda(0));
  Tensor u = Tensor::empty(f32, std::vector<int64_t>{kN}, Device::cuda(0));
  Tensor out = Tensor::empty(f32, std::vector<int64_t>{kN}, Device::cuda(0));
  const float alpha = 2.0f;
  {
    std::vector<float> init(kN);
    for (int64_t i = 0; i < kN; ++i) init[i] = static_cast<float>(i % 97) * 0.25f - 3.0f;
    cuda::check(
        g_api->cuMemcpyHtoD(reinterpret_cast<cuda::CUdeviceptr>(x.data()), init.data(), kN * 4),
        "cuMemcpyHtoD");
    std::reverse(init.begin(), init.end());
    cuda::check(
        g_api->cuMemcpyHtoD(reinterpret_cast<cuda::CUdeviceptr>(y.data()), init.data(), kN * 4),
        "cuMemcpyHtoD");
  }
  const StreamRef stream(g_stream);
  std::vector<Arg> args_a = {x, y, out, alpha};
  std::vector<Arg> args_c = {x, y, t, u, out, alpha};

  // The floor: everything precomputed, one cuLaunchKernelEx per launch.
  RawKernel raw_a = load_raw(a, "axpy");
  RawKernel raw_b = load_raw(b, "axpy_tma");
  RawKernel raw_c[3] = {load_raw(c, "step1"), load_raw(c, "step2"), load_raw(c, "step3")};
  void* px = x.data();
  void* py = y.data();
  void* pt = t.data();
  void* pu = u.data();
  void* pout = out.data();
  int n = static_cast<int>(kN);
  float alpha_value = alpha;
  cuda::CUtensorMap raw_map;
  {
    cuda::cuuint64_t dims[1] = {static_cast<cuda::cuuint64_t>(kN)};
    cuda::cuuint64_t strides[1] = {0};
    cuda::cuuint32_t box[1] = {256};
    cuda::cuuint32_t element_strides[1] = {1};
    cuda::check(
        g_api->cuTensorMapEncodeTiled(
            &raw_map, cuda::CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 1, px, dims, strides, box,
            element_strides, cuda::CU_TENSOR_MAP_INTERLEAVE_NONE, cuda::CU_TENSOR_MAP_SWIZZLE_NONE,
            cuda::CU_TENSOR_MAP_L2_PROMOTION_NONE, cuda::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
        "cuTensorMapEncodeTiled");
  }
  void* params_a[] = {&px, &py, &pout, &alpha_value, &n};
  void* params_b[] = {&px, &py, &pout, &alpha_value, &n, &raw_map};
  void* params_c[3][5] = {{&px, &py, &pt, &alpha_value, &n},
                          {&pt, &py, &pu, &alpha_value, &n},
                          {&pu, &px, &pout, &alpha_value, &n}};
  cuda::CUlaunchConfig config{};
  config.gridDimX = static_cast<unsigned>((kN + 255) / 256);
  config.gridDimY = config.gridDimZ = 1;
  config.blockDimX = 256;
  config.blockDimY = config.blockDimZ = 1;
  config.hStream = g_stream;
  auto raw = [&](cuda::CUkernel k, void** params) {
    cuda::check(
        g_api->cuLaunchKernelEx(&config, reinterpret_cast<cuda::CUfunction>(k), params, nullptr),
        "cuLaunchKernelEx");
  };

  // The launch plan alone: arguments bound once.
  auto prebind = [&](const Kernel& k, std::span<const Arg> args, detail::BoundCall& bound) {
    std::vector<Tensor> outputs;
    detail::Binder& binder = *k.state().binder;
    struct NoOutputs : OutputAllocator {
      Tensor allocate(DataType, std::span<const int64_t>, Device) const override { return {}; }
    } none;
    binder.bind(args, bound, none, outputs);
  };
  detail::BoundCall bound_a{}, bound_b{}, bound_c{};
  prebind(a, args_a, bound_a);
  prebind(b, args_a, bound_b);
  prebind(c, args_c, bound_c);

  std::vector<Variant> variants = {
      {"(a) raw cuLaunchKernelEx", [&] { raw(raw_a.kernel, params_a); }, {}},
      {"(a) tilejit executor", [&] { a.state().executor->launch(bound_a, stream); }, {}},
      {"(a) tilejit call", [&] { a(args_a, stream); }, {}},
      {"(b) raw cuLaunchKernelEx", [&] { raw(raw_b.kernel, params_b); }, {}},
      {"(b) tilejit executor", [&] { b.state().executor->launch(bound_b, stream); }, {}},
      {"(b) tilejit call", [&] { b(args_a, stream); }, {}},
      {"(c) 3x raw cuLaunchKernelEx",
       [&] {
         for (int i = 0; i < 3; ++i) raw(raw_c[i].kernel, params_c[i]);
       },
       {}},
      {"(c) tilejit executor", [&] { c.state().executor->launch(bound_c, stream); }, {}},
      {"(c) tilejit call", [&] { c(args_c, stream); }, {}},
  };
  for (Variant& v : variants) time_burst(v.call);  // warm-up: first-use attributes, TMA encode
  for (int round = 0; round < kRounds; ++round) {
    for (Variant& v : variants) v.per_call_us.push_back(time_burst(v.call));
  }

  // Sanity: one more call of (a) computes alpha * x + y (the device contracts it to an fma).
  std::vector<float> hx(kN), hy(kN), ho(kN);
  a(args_a, stream);
  cuda::check(g_api->cuStreamSynchronize(g_stream), "cuStreamSynchronize");
  g_api->cuMemcpyDtoH(hx.data(), reinterpret_cast<cuda::CUdeviceptr>(px), kN * 4);
  g_api->cuMemcpyDtoH(hy.data(), reinterpret_cast<cuda::CUdeviceptr>(py), kN * 4);
  g_api->cuMemcpyDtoH(ho.data(), reinterpret_cast<cuda::CUdeviceptr>(pout), kN * 4);
  int64_t wrong = 0;
  for (int64_t i = 0; i < kN; ++i) {
    if (ho[i] != std::fma(alpha, hx[i], hy[i])) ++wrong;
  }

  std::printf("\nbench_launch: %s (%s), host time per call, median of %d bursts of %d, n = %lld\n",
              device.name.c_str(), arch.c_str(), kRounds, kBurst, static_cast<long long>(kN));
  std::printf("%-30s %12s %12s %12s\n", "variant", "median us", "min us", "vs raw");
  double floor = 0;
  for (const Variant& v : variants) {
    double m = median(v.per_call_us);
    if (v.name.find("raw") != std::string::npos) floor = m;
    double lo = *std::min_element(v.per_call_us.begin(), v.per_call_us.end());
    std::printf("%-30s %12.3f %12.3f %11.2fx\n", v.name.c_str(), m, lo, m / floor);
  }
  std::printf("goals: (a) <= 1.10x, (b) <= 1.20x, (c) <= 1.10x; sanity check: %lld wrong of %lld\n",
              static_cast<long long>(wrong), static_cast<long long>(kN));
  g_api->cuStreamDestroy(g_stream);
  return wrong == 0 ? 0 : 1;
}
