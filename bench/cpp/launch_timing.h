// What bench_launch.cc and bench_nvcc.cc share: the axpy kernels they time, the raw
// cuLaunchKernelEx floor they compare against, and burst timing. Host time per call is taken
// over bursts of kBurst calls on one stream, the stream synchronized outside the timed region,
// the median over many bursts, every variant in the same run and interleaved round by round so
// that drift hits them alike. Each includer is its own executable; everything here is inline.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "compile/kernel_state.h"
#include "cuda/driver.h"
#include "tilejit/tilejit.h"

namespace tilejit::bench {

using Clock = std::chrono::steady_clock;

inline constexpr int kBurst = 200;   // calls per timed burst
inline constexpr int64_t kN = 4096;  // elements per tensor

// The kernel source in pieces: a benchmark joins them, with kernels of its own in between
// (bench_launch: kAxpyKernel + axpy_tma + kStepKernels).
inline constexpr const char* kAxpyKernel = R"(
#include <tilejit/cuda_device.h>
extern "C" __global__ void axpy(const float* __restrict__ x, const float* __restrict__ y,
                                float* __restrict__ out, float alpha, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = alpha * x[i] + y[i];
}
)";
// The kernels of the 3-launch program.
inline constexpr const char* kStepKernels =
    R"(extern "C" __global__ void step1(const float* x, const float* y, float* t, float alpha, int n) {
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

// Options that build with `backend` ("nvrtc" or "nvcc") for `arch`.
inline CompileOptions options_for(const std::string& backend, const std::string& arch) {
  CompileOptions options;
  options.execution_backend = backend;
  options.target = "cuda -arch=" + arch;
  return options;
}

// One launch of `kernel` (x, y, out, alpha and n first) over n elements, 256 threads a block.
inline ProgramBuilder axpy_program(const char* kernel, const std::string& source) {
  ProgramBuilder builder(kernel);
  builder.source(source)
      .tensor("x", "float32", {"n"})
      .tensor("y", "float32", {"n"})
      .tensor("out", "float32", {"n"})
      .scalar("alpha", "float32")
      .launch(Launch(kernel).with_grid({"ceildiv(n, 256)"}).with_block({256}));
  return builder;
}

// step1, step2, step3 in order: out = alpha * (alpha * (alpha * x + y) + y) + x.
inline Program three_launch_program(const std::string& source) {
  return ProgramBuilder("three")
      .source(source)
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
}

// True when a CUDA driver and a device exist; otherwise prints "<bench>: skipped: <why>", the
// line scripts/gpu-check.sh shows for a machine without a GPU.
inline bool cuda_device_or_skip(const char* bench) {
  std::string why;
  if (cuda::driver_available(&why) && cuda::device_count() > 0) return true;
  std::printf("%s: skipped: %s\n", bench, why.empty() ? "no CUDA device" : why.c_str());
  return false;
}

// Device 0, its primary context current on this thread, and the one stream every timed call
// runs on. Only after cuda_device_or_skip returned true.
class BenchGpu {
 public:
  BenchGpu()
      : api(cuda::driver()),
        device(cuda::device_info(0)),
        arch(fmt::format("sm_{}{}{}", device.cc_major, device.cc_minor,
                         device.cc_major >= 9 ? "a" : "")) {
    cuda::make_current(api, device);
    cuda::check(api.cuStreamCreate(&stream, 0), "cuStreamCreate");
  }
  ~BenchGpu() { api.cuStreamDestroy(stream); }
  BenchGpu(const BenchGpu&) = delete;
  BenchGpu& operator=(const BenchGpu&) = delete;

  void synchronize() const { cuda::check(api.cuStreamSynchronize(stream), "cuStreamSynchronize"); }

  const cuda::DriverApi& api;
  const cuda::DeviceInfo& device;
  const std::string arch;  // what the benchmarks compile for: sm_90a on an H100
  cuda::CUstream stream = nullptr;
};

// x and y (the inputs, uploaded from the host) and t, u, out, kN floats each on device 0.
struct AxpyTensors {
  AxpyTensors(const BenchGpu& gpu, const std::vector<float>& host_x,
              const std::vector<float>& host_y) {
    cuda::check(gpu.api.cuMemcpyHtoD(reinterpret_cast<cuda::CUdeviceptr>(x.data()), host_x.data(),
                                     kN * sizeof(float)),
                "cuMemcpyHtoD");
    cuda::check(gpu.api.cuMemcpyHtoD(reinterpret_cast<cuda::CUdeviceptr>(y.data()), host_y.data(),
                                     kN * sizeof(float)),
                "cuMemcpyHtoD");
  }
  static Tensor device_floats() {
    return Tensor::empty(DataType::parse("float32"), std::vector<int64_t>{kN}, Device::cuda(0));
  }
  Tensor x = device_floats();
  Tensor y = device_floats();
  Tensor t = device_floats();
  Tensor u = device_floats();
  Tensor out = device_floats();
};

// The kernel `name` of the binary `kernel` was built into, loaded again for launching by hand,
// as the current context's CUfunction: the cheapest handle to launch (a CUkernel makes the
// driver look the function up per launch). The library stays loaded for the life of the
// process.
inline cuda::CUfunction load_raw_kernel(const BenchGpu& gpu, const Kernel& kernel,
                                        const char* name) {
  cuda::CUlibrary library = nullptr;
  cuda::CUkernel raw = nullptr;
  cuda::check(gpu.api.cuLibraryLoadData(&library, kernel.artifact().binary.data(), nullptr, nullptr,
                                        0, nullptr, nullptr, 0),
              "cuLibraryLoadData");
  cuda::check(gpu.api.cuLibraryGetKernel(&raw, library, name), "cuLibraryGetKernel");
  cuda::CUfunction function = nullptr;
  cuda::check(gpu.api.cuKernelGetFunction(&function, raw), "cuKernelGetFunction");
  return function;
}

// step1, step2 and step3 of three_launch_program's binary, loaded again the same way.
inline std::array<cuda::CUfunction, 3> load_raw_steps(const BenchGpu& gpu, const Kernel& kernel) {
  return {load_raw_kernel(gpu, kernel, "step1"), load_raw_kernel(gpu, kernel, "step2"),
          load_raw_kernel(gpu, kernel, "step3")};
}

// The floor: one cuLaunchKernelEx per launch with every argument and the configuration
// precomputed. The parameter arrays point into this object, so it is neither copied nor moved.
struct RawLaunch {
  RawLaunch(const BenchGpu& gpu, const AxpyTensors& tensors, float alpha_value)
      : api(gpu.api),
        x(tensors.x.data()),
        y(tensors.y.data()),
        t(tensors.t.data()),
        u(tensors.u.data()),
        out(tensors.out.data()),
        alpha(alpha_value) {
    config.gridDimX = static_cast<unsigned>((kN + 255) / 256);
    config.gridDimY = config.gridDimZ = 1;
    config.blockDimX = 256;
    config.blockDimY = config.blockDimZ = 1;
    config.hStream = gpu.stream;
  }
  RawLaunch(const RawLaunch&) = delete;
  RawLaunch& operator=(const RawLaunch&) = delete;

  void operator()(cuda::CUfunction function, void** params) const {
    cuda::check(api.cuLaunchKernelEx(&config, function, params, nullptr), "cuLaunchKernelEx");
  }
  // The 3-launch program: three launches, each with its own precomputed parameters.
  void launch_steps(const std::array<cuda::CUfunction, 3>& steps) {
    for (size_t i = 0; i < steps.size(); ++i) (*this)(steps[i], step_params[i]);
  }

  const cuda::DriverApi& api;
  void* x;
  void* y;
  void* t;
  void* u;
  void* out;
  float alpha;
  int n = static_cast<int>(kN);
  void* axpy_params[5] = {&x, &y, &out, &alpha, &n};
  void* step_params[3][5] = {
      {&x, &y, &t, &alpha, &n}, {&t, &y, &u, &alpha, &n}, {&u, &x, &out, &alpha, &n}};
  cuda::CUlaunchConfig config{};
};

// `args` bound once by `kernel`'s Binder, so that a variant can time the launch plan (the
// executor) alone; the difference to the full call is the Binder's share.
inline detail::BoundCall bind_once(const Kernel& kernel, std::span<const Arg> args) {
  struct NoOutputs : OutputAllocator {
    Tensor allocate(DataType, std::span<const int64_t>, Device) const override { return {}; }
  } none;
  detail::BoundCall bound{};
  std::vector<Tensor> outputs;
  detail::kernel_state(kernel).binder->bind(args, bound, none, outputs);
  return bound;
}

// One timed case: `call` is one burst element.
struct Variant {
  std::string name;
  std::function<void()> call;
  std::vector<double> per_call_us;
};

// Microseconds per call over one burst; the stream is synchronized after the clock stops.
inline double time_burst(const BenchGpu& gpu, const std::function<void()>& call) {
  const auto start = Clock::now();
  for (int i = 0; i < kBurst; ++i) call();
  const auto end = Clock::now();
  gpu.synchronize();
  return std::chrono::duration<double, std::micro>(end - start).count() / kBurst;
}

// One untimed warm-up burst of each variant (first launches, first-use attributes, a TMA
// encode), then `rounds` rounds of one burst of each.
inline void time_variants(const BenchGpu& gpu, std::vector<Variant>& variants, int rounds) {
  for (Variant& v : variants) time_burst(gpu, v.call);
  for (int round = 0; round < rounds; ++round) {
    for (Variant& v : variants) v.per_call_us.push_back(time_burst(gpu, v.call));
  }
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The "<bench>: <device> ..." header line and one row per variant; "vs raw" divides by the
// median of the nearest "raw" row above it.
inline void print_table(const char* bench, const BenchGpu& gpu, int rounds,
                        const std::vector<Variant>& variants) {
  std::printf("\n%s: %s (%s), host time per call, median of %d bursts of %d, n = %lld\n", bench,
              gpu.device.name.c_str(), gpu.arch.c_str(), rounds, kBurst,
              static_cast<long long>(kN));
  std::printf("%-30s %12s %12s %12s\n", "variant", "median us", "min us", "vs raw");
  double floor = 0;
  for (const Variant& v : variants) {
    const double m = median(v.per_call_us);
    if (v.name.find("raw") != std::string::npos) floor = m;
    const double lo = *std::min_element(v.per_call_us.begin(), v.per_call_us.end());
    std::printf("%-30s %12.3f %12.3f %11.2fx\n", v.name.c_str(), m, lo, m / floor);
  }
}

// Waits for the stream, downloads `out` and counts the elements that differ from
// fma(alpha, x, y), which is what the device contracts alpha * x[i] + y[i] to.
inline int64_t count_wrong_axpy(const BenchGpu& gpu, const Tensor& out,
                                const std::vector<float>& host_x, const std::vector<float>& host_y,
                                float alpha) {
  gpu.synchronize();
  std::vector<float> host_out(kN);
  cuda::check(gpu.api.cuMemcpyDtoH(host_out.data(), reinterpret_cast<cuda::CUdeviceptr>(out.data()),
                                   kN * sizeof(float)),
              "cuMemcpyDtoH");
  int64_t wrong = 0;
  for (int64_t i = 0; i < kN; ++i) {
    if (host_out[i] != std::fma(alpha, host_x[i], host_y[i])) ++wrong;
  }
  return wrong;
}

}  // namespace tilejit::bench
