// The nvcc backend against the nvrtc backend and the floor, in one run:
//
//   host time per call: raw cuLaunchKernelEx (precomputed arguments, the nvrtc cubin), the
//   nvrtc backend and the nvcc backend (full call, and the executor alone with arguments bound
//   once), for (a) one launch of a 3-tensor + 1-scalar kernel and (c) a 3-launch program.
//   Bursts of 200 calls on one stream, synchronized outside the timed region, the median over
//   many bursts, variants interleaved round by round so that drift hits them alike.
//
//   cold build time: the same Program built by each backend (no cache), median of 3.
//
// Prints a table; exits 0 with a message when no GPU or no nvcc is present.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/backend.h"
#include "compile/compile.h"
#include "compile/kernel_state.h"
#include "compile/toolchain.h"
#include "cuda/driver.h"
#include "tilejit/tilejit.h"

namespace {

using namespace tilejit;
using Clock = std::chrono::steady_clock;

constexpr int kBurst = 200;
constexpr int kRounds = 40;
constexpr int kBuilds = 3;
constexpr int64_t kN = 4096;

const char* kSource = R"(
#include <tilejit/cuda_device.h>
extern "C" __global__ void axpy(const float* __restrict__ x, const float* __restrict__ y,
                                float* __restrict__ out, float alpha, int n) {
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
  std::function<void()> call;
  std::vector<double> per_call_us;
};

const cuda::DriverApi* g_api = nullptr;
cuda::CUstream g_stream = nullptr;

double time_burst(const std::function<void()>& call) {
  const auto start = Clock::now();
  for (int i = 0; i < kBurst; ++i) call();
  const auto end = Clock::now();
  cuda::check(g_api->cuStreamSynchronize(g_stream), "cuStreamSynchronize");
  return std::chrono::duration<double, std::micro>(end - start).count() / kBurst;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

CompileOptions options_for(const std::string& backend, const std::string& arch) {
  CompileOptions options;
  options.execution_backend = backend;
  options.target = "cuda -arch=" + arch;
  return options;
}

// Seconds for one uncached build of `program` by `backend` (the Backend's own build step,
// which compile() calls on a cache miss).
double cold_build_seconds(const Program& program, const std::string& backend,
                          const std::string& arch) {
  const detail::ResolvedOptions resolved =
      detail::resolve_options(program, options_for(backend, arch));
  const auto start = Clock::now();
  const CompiledArtifact artifact = detail::backend_named(backend).build(program, resolved);
  const auto end = Clock::now();
  if (artifact.binary.empty()) std::printf("warning: %s built an empty binary\n", backend.c_str());
  return std::chrono::duration<double>(end - start).count();
}

}  // namespace

int main() {
  std::string why;
  if (!cuda::driver_available(&why) || cuda::device_count() == 0) {
    std::printf("bench_nvcc: skipped: %s\n", why.empty() ? "no CUDA device" : why.c_str());
    return 0;
  }
  if (!detail::find_program("nvcc") && !std::filesystem::exists("/usr/local/cuda/bin/nvcc")) {
    std::printf("bench_nvcc: skipped: nvcc is not installed\n");
    return 0;
  }
  g_api = &cuda::driver();
  const cuda::DeviceInfo& device = cuda::device_info(0);
  cuda::make_current(*g_api, device);
  cuda::check(g_api->cuStreamCreate(&g_stream, 0), "cuStreamCreate");
  const std::string arch =
      fmt::format("sm_{}{}{}", device.cc_major, device.cc_minor, device.cc_major >= 9 ? "a" : "");
  const DataType f32 = DataType::parse("float32");

  const Program one = ProgramBuilder("axpy")
                          .source(kSource)
                          .tensor("x", "float32", {"n"})
                          .tensor("y", "float32", {"n"})
                          .tensor("out", "float32", {"n"})
                          .scalar("alpha", "float32")
                          .launch(Launch("axpy").with_grid({"ceildiv(n, 256)"}).with_block({256}))
                          .build();
  const Program three =
      ProgramBuilder("three")
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
  const Kernel a_nvrtc = compile(one, options_for("nvrtc", arch));
  const Kernel a_nvcc = compile(one, options_for("nvcc", arch));
  const Kernel c_nvrtc = compile(three, options_for("nvrtc", arch));
  const Kernel c_nvcc = compile(three, options_for("nvcc", arch));

  Tensor x = Tensor::empty(f32, std::vector<int64_t>{kN}, Device::cuda(0));
  Tensor y = Tensor::empty(f32, std::vector<int64_t>{kN}, Device::cuda(0));
  Tensor t = Tensor::empty(f32, std::vector<int64_t>{kN}, Device::cuda(0));
  Tensor u = Tensor::empty(f32, std::vector<int64_t>{kN}, Device::cuda(0));
  Tensor out = Tensor::empty(f32, std::vector<int64_t>{kN}, Device::cuda(0));
  std::vector<float> hx(kN), hy(kN);
  for (int64_t i = 0; i < kN; ++i) {
    hx[i] = static_cast<float>(i % 97) * 0.25f - 3.0f;
    hy[i] = static_cast<float>(i % 31) * 0.5f + 1.0f;
  }
  cuda::check(g_api->cuMemcpyHtoD(reinterpret_cast<cuda::CUdeviceptr>(x.data()), hx.data(), kN * 4),
              "cuMemcpyHtoD");
  cuda::check(g_api->cuMemcpyHtoD(reinterpret_cast<cuda::CUdeviceptr>(y.data()), hy.data(), kN * 4),
              "cuMemcpyHtoD");
  const float alpha = 2.0f;
  const StreamRef stream(g_stream);
  const std::vector<Arg> args_a = {x, y, out, alpha};
  const std::vector<Arg> args_c = {x, y, t, u, out, alpha};

  // The floor: the nvrtc cubin's kernels launched with everything precomputed.
  auto load_raw = [](const Kernel& k, const char* name) {
    cuda::CUlibrary library = nullptr;
    cuda::CUkernel kernel = nullptr;
    cuda::check(g_api->cuLibraryLoadData(&library, k.artifact().binary.data(), nullptr, nullptr, 0,
                                         nullptr, nullptr, 0),
                "cuLibraryLoadData");
    cuda::check(g_api->cuLibraryGetKernel(&kernel, library, name), "cuLibraryGetKernel");
    return kernel;
  };
  cuda::CUkernel raw_a = load_raw(a_nvrtc, "axpy");
  cuda::CUkernel raw_c[3] = {load_raw(c_nvrtc, "step1"), load_raw(c_nvrtc, "step2"),
                             load_raw(c_nvrtc, "step3")};
  void* px = x.data();
  void* py = y.data();
  void* pt = t.data();
  void* pu = u.data();
  void* pout = out.data();
  int n = static_cast<int>(kN);
  float alpha_value = alpha;
  void* params_a[] = {&px, &py, &pout, &alpha_value, &n};
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

  // The executors alone: arguments bound once.
  struct NoOutputs : OutputAllocator {
    Tensor allocate(DataType, std::span<const int64_t>, Device) const override { return {}; }
  } none;
  auto prebind = [&](const Kernel& k, std::span<const Arg> args, detail::BoundCall& bound) {
    std::vector<Tensor> outputs;
    k.state().binder->bind(args, bound, none, outputs);
  };
  detail::BoundCall bound_a{}, bound_c{};
  prebind(a_nvcc, args_a, bound_a);
  prebind(c_nvcc, args_c, bound_c);

  std::vector<Variant> variants = {
      {"(a) raw cuLaunchKernelEx", [&] { raw(raw_a, params_a); }, {}},
      {"(a) nvrtc call", [&] { a_nvrtc(args_a, stream); }, {}},
      {"(a) nvcc executor", [&] { a_nvcc.state().executor->launch(bound_a, stream); }, {}},
      {"(a) nvcc call", [&] { a_nvcc(args_a, stream); }, {}},
      {"(c) 3x raw cuLaunchKernelEx",
       [&] {
         for (int i = 0; i < 3; ++i) raw(raw_c[i], params_c[i]);
       },
       {}},
      {"(c) nvrtc call", [&] { c_nvrtc(args_c, stream); }, {}},
      {"(c) nvcc executor", [&] { c_nvcc.state().executor->launch(bound_c, stream); }, {}},
      {"(c) nvcc call", [&] { c_nvcc(args_c, stream); }, {}},
  };
  for (Variant& v : variants) time_burst(v.call);  // warm-up: init() per device, first launches
  for (int round = 0; round < kRounds; ++round) {
    for (Variant& v : variants) v.per_call_us.push_back(time_burst(v.call));
  }

  // Sanity: the nvcc backend's (a) computes alpha * x + y like the device's fma.
  a_nvcc(args_a, stream);
  cuda::check(g_api->cuStreamSynchronize(g_stream), "cuStreamSynchronize");
  std::vector<float> ho(kN);
  cuda::check(g_api->cuMemcpyDtoH(ho.data(), reinterpret_cast<cuda::CUdeviceptr>(pout), kN * 4),
              "cuMemcpyDtoH");
  int64_t wrong = 0;
  for (int64_t i = 0; i < kN; ++i) {
    if (ho[i] != std::fma(alpha, hx[i], hy[i])) ++wrong;
  }

  std::printf("\nbench_nvcc: %s (%s), host time per call, median of %d bursts of %d, n = %lld\n",
              device.name.c_str(), arch.c_str(), kRounds, kBurst, static_cast<long long>(kN));
  std::printf("%-30s %12s %12s %12s\n", "variant", "median us", "min us", "vs raw");
  double floor = 0;
  for (const Variant& v : variants) {
    const double m = median(v.per_call_us);
    if (v.name.find("raw") != std::string::npos) floor = m;
    const double lo = *std::min_element(v.per_call_us.begin(), v.per_call_us.end());
    std::printf("%-30s %12.3f %12.3f %11.2fx\n", v.name.c_str(), m, lo, m / floor);
  }

  std::vector<double> nvrtc_builds, nvcc_builds;
  for (int i = 0; i < kBuilds; ++i) {
    nvrtc_builds.push_back(cold_build_seconds(one, "nvrtc", arch));
    nvcc_builds.push_back(cold_build_seconds(one, "nvcc", arch));
  }
  const double nvrtc_s = median(nvrtc_builds);
  const double nvcc_s = median(nvcc_builds);
  std::printf("cold build of (a), median of %d: nvrtc %.3f s, nvcc %.3f s (%.1fx)\n", kBuilds,
              nvrtc_s, nvcc_s, nvcc_s / nvrtc_s);
  std::printf("sanity check: %lld wrong of %lld\n", static_cast<long long>(wrong),
              static_cast<long long>(kN));
  g_api->cuStreamDestroy(g_stream);
  return wrong == 0 ? 0 : 1;
}
