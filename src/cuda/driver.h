// The CUDA driver, opened with dlopen on first use (never linked), and the per-device facts
// the launch path needs. On a machine without libcuda.so.1 every function here throws one
// NotAvailableError; the rest of tilejit keeps working.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cuda/driver_api.h"

namespace tilejit::cuda {

// Resolved driver entry points. Filled once, read-only afterwards.
struct DriverApi {
  int version = 0;  // cuDriverGetVersion: 1000 * major + 10 * minor
  PFN_cuGetErrorString cuGetErrorString = nullptr;
  PFN_cuGetErrorName cuGetErrorName = nullptr;
  PFN_cuDriverGetVersion cuDriverGetVersion = nullptr;
  PFN_cuDeviceGet cuDeviceGet = nullptr;
  PFN_cuDeviceGetCount cuDeviceGetCount = nullptr;
  PFN_cuDeviceGetName cuDeviceGetName = nullptr;
  PFN_cuDeviceTotalMem cuDeviceTotalMem = nullptr;
  PFN_cuDeviceGetAttribute cuDeviceGetAttribute = nullptr;
  PFN_cuDevicePrimaryCtxRetain cuDevicePrimaryCtxRetain = nullptr;
  PFN_cuCtxGetCurrent cuCtxGetCurrent = nullptr;
  PFN_cuCtxSetCurrent cuCtxSetCurrent = nullptr;
  PFN_cuCtxGetDevice cuCtxGetDevice = nullptr;
  PFN_cuCtxGetLimit cuCtxGetLimit = nullptr;
  PFN_cuCtxSetLimit cuCtxSetLimit = nullptr;
  PFN_cuCtxResetPersistingL2Cache cuCtxResetPersistingL2Cache = nullptr;
  PFN_cuLibraryLoadData cuLibraryLoadData = nullptr;
  PFN_cuLibraryUnload cuLibraryUnload = nullptr;
  PFN_cuLibraryGetKernel cuLibraryGetKernel = nullptr;
  PFN_cuLibraryGetGlobal cuLibraryGetGlobal = nullptr;
  PFN_cuKernelGetFunction cuKernelGetFunction = nullptr;
  PFN_cuKernelGetAttribute cuKernelGetAttribute = nullptr;
  PFN_cuKernelSetAttribute cuKernelSetAttribute = nullptr;
  PFN_cuLaunchKernelEx cuLaunchKernelEx = nullptr;
  PFN_cuStreamCreate cuStreamCreate = nullptr;
  PFN_cuStreamDestroy cuStreamDestroy = nullptr;
  PFN_cuStreamSynchronize cuStreamSynchronize = nullptr;
  PFN_cuStreamGetAttribute cuStreamGetAttribute = nullptr;
  PFN_cuStreamSetAttribute cuStreamSetAttribute = nullptr;
  PFN_cuMemAlloc cuMemAlloc = nullptr;
  PFN_cuMemFree cuMemFree = nullptr;
  PFN_cuMemcpyHtoD cuMemcpyHtoD = nullptr;
  PFN_cuMemcpyDtoH cuMemcpyDtoH = nullptr;
  PFN_cuMemsetD8 cuMemsetD8 = nullptr;
  PFN_cuTensorMapEncodeTiled cuTensorMapEncodeTiled = nullptr;
  PFN_cuTensorMapEncodeIm2col cuTensorMapEncodeIm2col = nullptr;
};

// The driver, loaded and initialized (cuInit) on first use, thread-safely, once. Throws
// NotAvailableError (the same message every time) when libcuda.so.1 is missing, too old, or
// cuInit fails (e.g. no device).
const DriverApi& driver();
// True when driver() would succeed; otherwise `why` (if given) receives the reason.
bool driver_available(std::string* why = nullptr);

// "CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was encountered".
std::string error_string(CUresult result);
// Throws CudaError "<call> failed for kernel '<kernel>': <error string>" unless CUDA_SUCCESS.
inline void check(CUresult result, const char* call, std::string_view kernel = {});
[[noreturn]] void throw_cuda_error(CUresult result, const char* call, std::string_view kernel);

inline void check(CUresult result, const char* call, std::string_view kernel) {
  if (result != CUDA_SUCCESS) [[unlikely]] {
    throw_cuda_error(result, call, kernel);
  }
}

inline constexpr int kMaxDevices = 64;

// What the launch path reads about one device, queried once. The primary context is retained
// for the life of the process (released at exit would race with other static destructors).
struct DeviceInfo {
  int ordinal = 0;
  CUdevice device = 0;
  CUcontext context = nullptr;  // the retained primary context
  int cc_major = 0;
  int cc_minor = 0;
  int multiprocessors = 0;
  int max_shared_per_block = 0;        // without opt-in (48 KB)
  int max_shared_per_block_optin = 0;  // the most a kernel may ask for
  int l2_bytes = 0;
  int max_persisting_l2_bytes = 0;
  int max_access_policy_window_bytes = 0;
  bool cooperative_launch = false;
  std::string name;
  size_t total_memory = 0;
};

int device_count();
// Throws ArgumentError naming the ordinal when there is no such device.
const DeviceInfo& device_info(int ordinal);

// Makes `info`'s primary context current on the calling thread and leaves it so: for code
// that owns its thread (tests, benchmarks). Calls into user code use ScopedContext.
inline void make_current(const DriverApi& api, const DeviceInfo& info) {
  CUcontext current = nullptr;
  api.cuCtxGetCurrent(&current);
  if (current != info.context) {
    check(api.cuCtxSetCurrent(info.context), "cuCtxSetCurrent");
  }
}

// Makes `info`'s primary context current for the scope and restores the caller's context at
// its end, so a framework's thread (torch working on device 0) keeps its context when a call
// ran on another device. A thread that had no context keeps the primary context afterwards,
// as the CUDA runtime leaves it on first use. When the context already is current this costs
// one cuCtxGetCurrent (a thread-local read inside the driver).
class ScopedContext {
 public:
  ScopedContext(const DriverApi& api, const DeviceInfo& info) : api_(api) {
    api.cuCtxGetCurrent(&previous_);
    if (previous_ != info.context) [[unlikely]] {
      check(api.cuCtxSetCurrent(info.context), "cuCtxSetCurrent");
      restore_ = previous_ != nullptr;
    }
  }
  ~ScopedContext() {
    if (restore_) [[unlikely]] {
      api_.cuCtxSetCurrent(previous_);  // a destructor does not throw; nothing to undo on failure
    }
  }
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;

 private:
  const DriverApi& api_;
  CUcontext previous_ = nullptr;
  bool restore_ = false;
};

// Synchronizes `stream` (null: the legacy default stream) of `device` and throws CudaError
// for an error a kernel raised (a fault, a trap), naming `what`.
void synchronize(int device, void* stream, std::string_view what = {});

}  // namespace tilejit::cuda
