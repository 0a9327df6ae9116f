// Shared helpers of the GPU tests: skip without a device, move data to and from the device,
// poison outputs, compile the kernels of tests/data/cuda for the device's architecture.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cuda/driver.h"
#include "tilejit/tilejit.h"

namespace tilejit::gpu_test {

// Skips the calling test, with the reason, when no CUDA driver or device is present.
#define TILEJIT_REQUIRE_GPU()                                             \
  do {                                                                    \
    std::string why_;                                                     \
    if (!::tilejit::gpu_test::gpu_available(&why_)) GTEST_SKIP() << why_; \
  } while (0)

inline bool gpu_available(std::string* why) {
  if (!cuda::driver_available(why)) return false;
  if (cuda::device_count() == 0) {
    *why = "the CUDA driver reports no device";
    return false;
  }
  return true;
}

inline const cuda::DeviceInfo& device() {
  return cuda::device_info(0);
}

// The device's architecture with the `a` suffix where it exists (wgmma, TMA multicast).
inline std::string device_arch() {
  const cuda::DeviceInfo& d = device();
  return fmt::format("sm_{}{}{}", d.cc_major, d.cc_minor, d.cc_major >= 9 ? "a" : "");
}

inline std::string kernel_source(const std::string& file) {
  std::ifstream in(std::string(TILEJIT_TEST_DATA_DIR) + "/cuda/" + file);
  EXPECT_TRUE(in.good()) << file;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The backend under test: TILEJIT_TEST_BACKEND (e.g. "nvcc", to run the suite against the
// generated host library), else nvrtc. Checks of nvrtc's own error texts and hooks apply to
// nvrtc only; every result check applies to both.
inline std::string test_backend() {
  const char* backend = std::getenv("TILEJIT_TEST_BACKEND");
  return backend != nullptr && *backend != '\0' ? backend : "nvrtc";
}
inline bool testing_nvrtc() {
  return test_backend() == "nvrtc";
}

#define TILEJIT_REQUIRE_NVRTC_BACKEND()                                                          \
  do {                                                                                           \
    if (!::tilejit::gpu_test::testing_nvrtc()) GTEST_SKIP() << "checks nvrtc's own launch path"; \
  } while (0)

inline Kernel compile_for_device(const Program& program) {
  CompileOptions options;
  options.execution_backend = test_backend();
  options.target = "cuda -arch=" + device_arch();
  return compile(program, options);
}

inline void check_driver(cuda::CUresult result, const char* what) {
  cuda::check(result, what);
}

// A device tensor filled with 0xFF bytes (NaN for floats, -1 for integers): an output element
// the kernel never writes cannot pass a comparison.
inline Tensor poisoned(DataType dtype, std::vector<int64_t> shape) {
  Tensor t = Tensor::empty(dtype, shape, Device::cuda(0));
  const cuda::DriverApi& api = cuda::driver();
  cuda::make_current(api, device());
  check_driver(api.cuMemsetD8(reinterpret_cast<cuda::CUdeviceptr>(t.data()), 0xFF,
                              static_cast<size_t>(dtype.storage_bytes(t.numel()))),
               "cuMemsetD8");
  return t;
}

template <class T>
Tensor to_device(const std::vector<T>& host, std::vector<int64_t> shape, DataType dtype) {
  Tensor t = Tensor::empty(dtype, shape, Device::cuda(0));
  EXPECT_EQ(static_cast<size_t>(t.numel()), host.size());
  const cuda::DriverApi& api = cuda::driver();
  cuda::make_current(api, device());
  if (!host.empty()) {
    check_driver(api.cuMemcpyHtoD(reinterpret_cast<cuda::CUdeviceptr>(t.data()), host.data(),
                                  host.size() * sizeof(T)),
                 "cuMemcpyHtoD");
  }
  return t;
}

// Synchronizes the device (reporting kernel faults) and copies `t` back.
template <class T>
std::vector<T> to_host(const Tensor& t) {
  cuda::synchronize(0, nullptr, "test");
  std::vector<T> host(static_cast<size_t>(t.numel()));
  const cuda::DriverApi& api = cuda::driver();
  if (!host.empty()) {
    check_driver(api.cuMemcpyDtoH(host.data(), reinterpret_cast<cuda::CUdeviceptr>(t.data()),
                                  host.size() * sizeof(T)),
                 "cuMemcpyDtoH");
  }
  return host;
}

inline std::vector<float> random_floats(size_t n, float low = -1.0f, float high = 1.0f) {
  thread_local std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> values(n);
  for (float& v : values) v = dist(rng);
  return values;
}

}  // namespace tilejit::gpu_test
