// tilejit._core._bench_raw_launch: the launch-overhead floor for bench/python/bench_launch.py,
// measured in the same process as the Python callers it is compared with. It launches a
// compiled kernel's cubin with one cuLaunchKernelEx per call from a prebuilt parameter array:
// no argument checks, no stream lookup, nothing but the driver call.
// tilejit._core._bench_dlpack_exchange: the framework's share of a call, timed alone: one
// tensor read through its DLPack C exchange API, and one current-stream query.
#include <nanobind/nanobind.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings.h"
#include "cuda/driver.h"
#include "dlpack_exchange.h"
#include "tilejit/errors.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace tilejit::python {
namespace {

// Nanoseconds per launch for each of `bursts` bursts of `burst` launches; the stream is
// synchronized between bursts, outside the timed region. The kernel takes `pointers`
// (device addresses) followed by `ints` (32-bit).
std::vector<double> bench_raw_launch(nb::bytes image, const std::string& kernel_name,
                                     std::array<uint32_t, 3> grid, std::array<uint32_t, 3> block,
                                     std::vector<uint64_t> pointers, std::vector<int32_t> ints,
                                     uintptr_t stream_handle, int device, int burst, int bursts) {
  const cuda::DriverApi& api = cuda::driver();
  cuda::make_current(api, cuda::device_info(device));
  std::string code(static_cast<const char*>(image.data()), image.size());
  cuda::CUlibrary library = nullptr;
  cuda::check(
      api.cuLibraryLoadData(&library, code.c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0),
      "cuLibraryLoadData", kernel_name);
  std::vector<double> ns_per_launch;
  try {
    cuda::CUkernel kernel = nullptr;
    cuda::check(api.cuLibraryGetKernel(&kernel, library, kernel_name.c_str()), "cuLibraryGetKernel",
                kernel_name);
    // The current context's function: the cheapest handle to launch (a CUkernel makes the
    // driver look it up per launch).
    cuda::CUfunction function = nullptr;
    cuda::check(api.cuKernelGetFunction(&function, kernel), "cuKernelGetFunction", kernel_name);
    std::vector<void*> params;
    for (uint64_t& p : pointers) params.push_back(&p);
    for (int32_t& i : ints) params.push_back(&i);
    cuda::CUlaunchConfig config{};
    config.gridDimX = grid[0];
    config.gridDimY = grid[1];
    config.gridDimZ = grid[2];
    config.blockDimX = block[0];
    config.blockDimY = block[1];
    config.blockDimZ = block[2];
    config.hStream = reinterpret_cast<cuda::CUstream>(stream_handle);
    nb::gil_scoped_release release;
    for (int b = 0; b < bursts; ++b) {
      cuda::check(api.cuStreamSynchronize(config.hStream), "cuStreamSynchronize", kernel_name);
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < burst; ++i) {
        cuda::check(api.cuLaunchKernelEx(&config, function, params.data(), nullptr),
                    "cuLaunchKernelEx", kernel_name);
      }
      auto stop = std::chrono::steady_clock::now();
      ns_per_launch.push_back(std::chrono::duration<double, std::nano>(stop - start).count() /
                              burst);
    }
    cuda::check(api.cuStreamSynchronize(config.hStream), "cuStreamSynchronize", kernel_name);
  } catch (...) {
    api.cuLibraryUnload(library);
    throw;
  }
  api.cuLibraryUnload(library);
  return ns_per_launch;
}

// Nanoseconds per dltensor_from_py_object_no_sync of `tensor` and per current_work_stream of
// its device, each over `count` calls in a C loop with the GIL held, as a kernel call makes them.
std::array<double, 2> bench_dlpack_exchange(nb::handle tensor, int count) {
  const DLPackExchangeAPI* api = exchange_api_of(Py_TYPE(tensor.ptr()));
  if (api == nullptr || api->dltensor_from_py_object_no_sync == nullptr) {
    throw Error(std::string("_bench_dlpack_exchange: ") + Py_TYPE(tensor.ptr())->tp_name +
                " has no DLPack C exchange API with dltensor_from_py_object_no_sync");
  }
  dlpack::DLTensor view{};
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    if (api->dltensor_from_py_object_no_sync(tensor.ptr(), &view) != 0) {
      raise_framework_failure("dltensor_from_py_object_no_sync");
    }
  }
  auto middle = std::chrono::steady_clock::now();
  void* stream = nullptr;
  for (int i = 0; i < count; ++i) {
    if (api->current_work_stream(view.device.device_type, view.device.device_id, &stream) != 0) {
      raise_framework_failure("current_work_stream");
    }
  }
  auto stop = std::chrono::steady_clock::now();
  return {std::chrono::duration<double, std::nano>(middle - start).count() / count,
          std::chrono::duration<double, std::nano>(stop - middle).count() / count};
}

}  // namespace

void bind_bench(nb::module_& m) {
  m.def("_bench_raw_launch", &bench_raw_launch, "image"_a, "kernel"_a, "grid"_a, "block"_a,
        "pointers"_a, "ints"_a, "stream"_a, "device"_a, "burst"_a, "bursts"_a,
        "Benchmark helper: ns per raw cuLaunchKernelEx of a cubin's kernel, per burst.");
  m.def("_bench_dlpack_exchange", &bench_dlpack_exchange, "tensor"_a, "count"_a,
        "Benchmark helper: ns per DLPack C exchange read of `tensor` and per current-stream "
        "query of its device (the framework's share of a kernel call).");
}

}  // namespace tilejit::python
