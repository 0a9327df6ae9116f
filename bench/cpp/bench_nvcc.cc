// The nvcc backend against the nvrtc backend and the floor, in one run:
//
//   host time per call: raw cuLaunchKernelEx (precomputed arguments, the nvrtc cubin), the
//   nvrtc backend and the nvcc backend, for (a) one launch of a 3-tensor + 1-scalar kernel and
//   (c) a 3-launch program. The nvcc call is split into its steps: the generated library's
//   call_packed alone (arguments packed once: the wrapper and its driver launch), the executor
//   (+ context check and packing of bound arguments), the full call (+ the Binder).
//   Bursts of 200 calls on one stream, synchronized outside the timed region, the median over
//   many bursts, variants interleaved round by round so that drift hits them alike
//   (launch_timing.h).
//
//   cold build time: the same Program built by each backend (no cache), median of 3.
//
// Prints a table; exits 0 with a message when no GPU or no nvcc is present.
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/shared_library.h"
#include "compile/compile.h"
#include "compile/kernel_state.h"
#include "launch_timing.h"
#include "toolchain/toolchain.h"

namespace {

using namespace tilejit;
using namespace tilejit::bench;

constexpr int kRounds = 40;
constexpr int kBuilds = 3;

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

// The nvcc library of `kernel` loaded a second time, as an exported library is used: init()
// once, then call_packed with an argument array filled once (the floor's own values).
class NvccLibrary {
 public:
  explicit NvccLibrary(const Kernel& kernel)
      : library_(detail::load_artifact_library(kernel.artifact(), "nvcc")),
        call_packed_(reinterpret_cast<CallPackedFn>(library_.symbol("call_packed"))),
        get_last_error_(reinterpret_cast<GetLastErrorFn>(library_.symbol("get_last_error"))) {
    const auto init = reinterpret_cast<int (*)()>(library_.symbol("init"));
    if (init() != 0) throw Error(std::string("init: ") + get_last_error_());
  }

  void operator()(void* const* args, cuda::CUstream stream) const {
    if (call_packed_(args, stream) != 0) throw Error(get_last_error_());
  }

 private:
  using CallPackedFn = int (*)(void* const*, void*);
  using GetLastErrorFn = const char* (*)();
  detail::SharedLibrary library_;
  CallPackedFn call_packed_;
  GetLastErrorFn get_last_error_;
};

}  // namespace

int main() {
  if (!cuda_device_or_skip("bench_nvcc")) return 0;
  if (!detail::find_program("nvcc") && !std::filesystem::exists("/usr/local/cuda/bin/nvcc")) {
    std::printf("bench_nvcc: skipped: nvcc is not installed\n");
    return 0;
  }
  const BenchGpu gpu;
  const std::string source = std::string(kAxpyKernel) + kStepKernels;

  const Program one = axpy_program("axpy", source).build();
  const Program three = three_launch_program(source);
  const Kernel a_nvrtc = compile(one, options_for("nvrtc", gpu.arch));
  const Kernel a_nvcc = compile(one, options_for("nvcc", gpu.arch));
  const Kernel c_nvrtc = compile(three, options_for("nvrtc", gpu.arch));
  const Kernel c_nvcc = compile(three, options_for("nvcc", gpu.arch));

  std::vector<float> host_x(kN), host_y(kN);
  for (int64_t i = 0; i < kN; ++i) {
    host_x[i] = static_cast<float>(i % 97) * 0.25f - 3.0f;
    host_y[i] = static_cast<float>(i % 31) * 0.5f + 1.0f;
  }
  const AxpyTensors tensors(gpu, host_x, host_y);
  const float alpha = 2.0f;
  const StreamRef stream(gpu.stream);
  const std::vector<Arg> args_a = {tensors.x, tensors.y, tensors.out, alpha};
  const std::vector<Arg> args_c = {tensors.x, tensors.y, tensors.t, tensors.u, tensors.out, alpha};

  // The floor: the nvrtc cubin's kernels launched with everything precomputed.
  RawLaunch raw(gpu, tensors, alpha);
  const cuda::CUfunction raw_a = load_raw_kernel(gpu, a_nvrtc, "axpy");
  const std::array<cuda::CUfunction, 3> raw_c = load_raw_steps(gpu, c_nvrtc);

  // The libraries alone: call() takes the tensors, alpha, then the symbol n.
  const NvccLibrary library_a(a_nvcc);
  const NvccLibrary library_c(c_nvcc);
  void* const packed_a[] = {&raw.x, &raw.y, &raw.out, &raw.alpha, &raw.n};
  void* const packed_c[] = {&raw.x, &raw.y, &raw.t, &raw.u, &raw.out, &raw.alpha, &raw.n};

  // The executors alone: arguments bound once.
  const detail::BoundCall bound_a = bind_once(a_nvcc, args_a);
  const detail::BoundCall bound_c = bind_once(c_nvcc, args_c);

  std::vector<Variant> variants = {
      {"(a) raw cuLaunchKernelEx", [&] { raw(raw_a, raw.axpy_params); }, {}},
      {"(a) nvrtc call", [&] { a_nvrtc(args_a, stream); }, {}},
      {"(a) nvcc library call_packed", [&] { library_a(packed_a, gpu.stream); }, {}},
      {"(a) nvcc executor",
       [&] { detail::kernel_state(a_nvcc).executor->launch(bound_a, stream); },
       {}},
      {"(a) nvcc call", [&] { a_nvcc(args_a, stream); }, {}},
      {"(c) 3x raw cuLaunchKernelEx", [&] { raw.launch_steps(raw_c); }, {}},
      {"(c) nvrtc call", [&] { c_nvrtc(args_c, stream); }, {}},
      {"(c) nvcc library call_packed", [&] { library_c(packed_c, gpu.stream); }, {}},
      {"(c) nvcc executor",
       [&] { detail::kernel_state(c_nvcc).executor->launch(bound_c, stream); },
       {}},
      {"(c) nvcc call", [&] { c_nvcc(args_c, stream); }, {}},
  };
  time_variants(gpu, variants, kRounds);

  // Sanity: the nvcc backend's (a) computes alpha * x + y.
  a_nvcc(args_a, stream);
  const int64_t wrong = count_wrong_axpy(gpu, tensors.out, host_x, host_y, alpha);

  print_table("bench_nvcc", gpu, kRounds, variants);
  std::vector<double> nvrtc_builds, nvcc_builds;
  for (int i = 0; i < kBuilds; ++i) {
    nvrtc_builds.push_back(cold_build_seconds(one, "nvrtc", gpu.arch));
    nvcc_builds.push_back(cold_build_seconds(one, "nvcc", gpu.arch));
  }
  const double nvrtc_s = median(nvrtc_builds);
  const double nvcc_s = median(nvcc_builds);
  std::printf("cold build of (a), median of %d: nvrtc %.3f s, nvcc %.3f s (%.1fx)\n", kBuilds,
              nvrtc_s, nvcc_s, nvcc_s / nvrtc_s);
  std::printf("goal (issue 13): nvcc call <= 1.06x its raw row; sanity check: %lld wrong of %lld\n",
              static_cast<long long>(wrong), static_cast<long long>(kN));
  return wrong == 0 ? 0 : 1;
}
