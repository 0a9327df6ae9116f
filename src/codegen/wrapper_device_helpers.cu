// The helpers a generated CUDA host wrapper may define (HIP: the same text through
// wrapper_device.cc's CUDA -> HIP name map), as one real source file. The build embeds it
// (wrapper_device_helpers.cc.in) and the generator copies the sections a Program needs, each
// verbatim: inside the wrapper's anonymous namespace tj_fail always; for CUDA
// tj_driver_function, tj_launch and tj_load_device_code, for HIP tj_check_launch; the others
// when a launch needs them; after it, among the exported entry points, get_global for CUDA. A
// line `//@ NAME` starts section NAME; it and everything above the first one (this comment)
// are not copied. What a section uses but does not define (tj_device_image, tj_library,
// tj_kernels, tj_kernel_names) the generator writes before it. Edit here, then run
// scripts/update-golden.sh.

//@ fail
// Errors are per thread: get_last_error() returns the calling thread's last
// message, so threads that share this library never see each other's errors.
thread_local char tj_error[1024];

// Records an error message and returns -1, the entry points' failure value.
__attribute__((format(printf, 1, 2))) int tj_fail(const char* format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(tj_error, sizeof tj_error, format, args);
  va_end(args);
  return -1;
}

//@ driver_function
// A CUDA driver function, resolved at run time, so that this library does not
// link libcuda. Null when the driver lacks it.
template <class Function>
Function tj_driver_function(const char* symbol) {
  void* function = nullptr;
  cudaDriverEntryPointQueryResult status = cudaDriverEntryPointSymbolNotFound;
  const cudaError_t error =
      cudaGetDriverEntryPointByVersion(symbol, &function, 12000, cudaEnableDefault, &status);
  const bool found = error == cudaSuccess && status == cudaDriverEntryPointSuccess;
  return found ? reinterpret_cast<Function>(function) : nullptr;
}

//@ launch
// Kernels are launched with the driver's cuLaunchKernelEx, not the runtime's
// cudaLaunchKernelExC, which does per-launch work of its own around the same driver call.
// The runtime documents a cudaKernel_t as the driver's CUkernel, and the driver launches a
// CUkernel cast to CUfunction in the context of the launch's stream (the current context for
// the default stream), finding the kernel's function there on every launch: ~0.1 us on an
// H100. So each thread remembers, per kernel, the function in the last context it launched
// from, by the context's id: ids are never reused, where a destroyed context's handle can be.
// Resolved once per process (a thread-safe static); init() checks the launch.
struct tj_driver_launch {
  PFN_cuLaunchKernelEx_v11060 launch;
  PFN_cuCtxGetId_v12000 context_id;
  PFN_cuKernelGetFunction_v12000 kernel_function;
  PFN_cuGetErrorName_v6000 error_name;
  PFN_cuGetErrorString_v6000 error_string;
};

const tj_driver_launch& tj_driver() {
  static const tj_driver_launch driver = {
      tj_driver_function<PFN_cuLaunchKernelEx_v11060>("cuLaunchKernelEx"),
      tj_driver_function<PFN_cuCtxGetId_v12000>("cuCtxGetId"),
      tj_driver_function<PFN_cuKernelGetFunction_v12000>("cuKernelGetFunction"),
      tj_driver_function<PFN_cuGetErrorName_v6000>("cuGetErrorName"),
      tj_driver_function<PFN_cuGetErrorString_v6000>("cuGetErrorString")};
  return driver;
}

struct tj_function_slot {
  unsigned long long context;  // the id of the context `function` belongs to
  CUfunction function;         // null until the first launch on this thread
};
thread_local tj_function_slot tj_functions[sizeof tj_kernels / sizeof tj_kernels[0]];

// The function of tj_kernels[index] in the current context; null where there is no current
// context or the driver lacks the calls, and the CUkernel is launched.
CUfunction tj_function(const tj_driver_launch& driver, size_t index) {
  unsigned long long context = 0;
  if (driver.context_id == nullptr || driver.kernel_function == nullptr ||
      driver.context_id(nullptr, &context) != CUDA_SUCCESS) {
    return nullptr;
  }
  tj_function_slot& slot = tj_functions[index];
  if (slot.function == nullptr || slot.context != context) {
    CUfunction function = nullptr;
    if (driver.kernel_function(&function, (CUkernel)tj_kernels[index]) != CUDA_SUCCESS) {
      return nullptr;
    }
    slot.context = context;
    slot.function = function;
  }
  return slot.function;
}

// One launch of tj_kernels[index], the kernel `kernel` of the device code: 0, or -1 with a
// message naming the kernel and the driver's error. The driver returns every launch error
// itself, including one left by an earlier fault in the context, so there is no last error to
// read afterwards.
int tj_launch(const char* kernel, const CUlaunchConfig* config, size_t index, void** args) {
  const tj_driver_launch& driver = tj_driver();
  if (driver.launch == nullptr) {
    return tj_fail("call: the CUDA driver does not provide cuLaunchKernelEx (CUDA 12.0 or newer)");
  }
  const CUfunction function = tj_function(driver, index);
  CUresult result = function != nullptr ? driver.launch(config, function, args, nullptr)
                                        : CUDA_ERROR_INVALID_HANDLE;
  if (result != CUDA_SUCCESS) {
    // A stream of another context refuses the current context's function; the CUkernel runs
    // in the stream's context. A refused launch enqueued nothing, so nothing runs twice.
    result = driver.launch(config, (CUfunction)tj_kernels[index], args, nullptr);
  }
  if (result == CUDA_ERROR_INVALID_CONTEXT) {
    // A default-stream launch on a thread with no current context, which the runtime's launch
    // would have bound to its current device's primary context: bound the same way, once.
    int device = 0;
    if (cudaGetDevice(&device) == cudaSuccess && cudaSetDevice(device) == cudaSuccess) {
      result = driver.launch(config, (CUfunction)tj_kernels[index], args, nullptr);
    }
  }
  if (result == CUDA_SUCCESS) return 0;
  const char* name = nullptr;
  const char* text = nullptr;
  if (driver.error_name != nullptr) driver.error_name(result, &name);
  if (driver.error_string != nullptr) driver.error_string(result, &text);
  if (name == nullptr) {
    return tj_fail("call: cuLaunchKernelEx failed for kernel '%s': CUresult %d", kernel,
                   (int)result);
  }
  return tj_fail("call: cuLaunchKernelEx failed for kernel '%s': %s: %s", kernel, name,
                 text != nullptr ? text : "");
}

//@ load_device_code
struct tj_loaded {
  cudaError_t error;
  const char* what;  // what failed: the library, or the kernel that was not found
};

int tj_load_device_code() {
  static const tj_loaded loaded = [] {
    cudaError_t error =
        cudaLibraryLoadData(&tj_library, tj_device_image, nullptr, nullptr, 0, nullptr, nullptr, 0);
    if (error != cudaSuccess) return tj_loaded{error, "the device code"};
    for (size_t i = 0; i < sizeof tj_kernels / sizeof tj_kernels[0]; ++i) {
      error = cudaLibraryGetKernel(&tj_kernels[i], tj_library, tj_kernel_names[i]);
      if (error != cudaSuccess) return tj_loaded{error, tj_kernel_names[i]};
    }
    return tj_loaded{cudaSuccess, nullptr};
  }();
  if (loaded.error != cudaSuccess) {
    return tj_fail("init: cannot load %s: %s", loaded.what, cudaGetErrorString(loaded.error));
  }
  return 0;
}

//@ get_global
// The device address and size of the module global `name` (a __device__ or __constant__
// variable) on the current device: 0, 1 when the device code has no such variable, -1 on
// failure (get_last_error() says why).
extern "C" int get_global(const char* name, void** address, size_t* bytes) {
  tj_error[0] = '\0';
  if (tj_load_device_code() != 0) return -1;
  const cudaError_t error = cudaLibraryGetGlobal(address, bytes, tj_library, name);
  if (error == cudaSuccess) return 0;
  cudaGetLastError();
  if (error == cudaErrorSymbolNotFound) return 1;
  return tj_fail("get_global: %s: %s", name, cudaGetErrorString(error));
}

//@ check_launch
// Checks one launch: the launch's own result, then cudaGetLastError() for an error
// the launch left behind.
int tj_check_launch(const char* kernel, cudaError_t launched) {
  const cudaError_t pending = cudaGetLastError();
  const cudaError_t error = launched != cudaSuccess ? launched : pending;
  if (error != cudaSuccess) {
    return tj_fail("call: launching kernel '%s' failed: %s (%s)", kernel, cudaGetErrorName(error),
                   cudaGetErrorString(error));
  }
  return 0;
}

//@ dims
// Grid and block sizes come from int64_t shape arithmetic: a size that dim3
// cannot hold is refused rather than truncated.
int tj_dims(const char* kernel, const char* what, int64_t x, int64_t y, int64_t z, dim3* dims) {
  const int64_t sizes[3] = {x, y, z};
  for (int i = 0; i < 3; ++i) {
    if (sizes[i] < 0 || sizes[i] > UINT32_MAX) {
      return tj_fail("call: %s.%c of kernel '%s' is %lld: expected 0..4294967295", what, "xyz"[i],
                     kernel, (long long)sizes[i]);
    }
  }
  *dims = dim3((unsigned)x, (unsigned)y, (unsigned)z);
  return 0;
}

//@ smem_bytes
// The launch takes the size as an unsigned int: a size it cannot hold is refused rather than
// truncated.
int tj_smem_bytes(const char* kernel, int64_t bytes, unsigned int* out) {
  if (bytes < 0 || bytes > UINT32_MAX) {
    return tj_fail(
        "call: dynamic shared memory of kernel '%s' is %lld bytes: expected 0..4294967295", kernel,
        (long long)bytes);
  }
  *out = (unsigned int)bytes;
  return 0;
}

//@ allow_max_dynamic_smem
// For a kernel whose dynamic shared memory size is only known per call: allow
// as much as the current device lets a block opt in to, beside the kernel's
// static shared memory. A call that asks for more fails at its launch.
int tj_allow_max_dynamic_smem(const void* kernel, const char* name) {
  int device = 0;
  int optin_bytes = 0;
  cudaFuncAttributes attributes;
  cudaError_t error = cudaGetDevice(&device);
  if (error == cudaSuccess) {
    error = cudaDeviceGetAttribute(&optin_bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  }
  if (error == cudaSuccess) error = cudaFuncGetAttributes(&attributes, kernel);
  if (error == cudaSuccess) {
    error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 optin_bytes - (int)attributes.sharedSizeBytes);
  }
  if (error != cudaSuccess) {
    return tj_fail("init: cannot raise the dynamic shared memory limit of kernel '%s': %s", name,
                   cudaGetErrorString(error));
  }
  return 0;
}

//@ encode_tiled
// Resolved once per process (a thread-safe static).
PFN_cuTensorMapEncodeTiled_v12000 tj_encode_tiled() {
  static const auto function =
      tj_driver_function<PFN_cuTensorMapEncodeTiled_v12000>("cuTensorMapEncodeTiled");
  return function;
}

//@ encode_im2col
// Resolved once per process (a thread-safe static).
PFN_cuTensorMapEncodeIm2col_v12000 tj_encode_im2col() {
  static const auto function =
      tj_driver_function<PFN_cuTensorMapEncodeIm2col_v12000>("cuTensorMapEncodeIm2col");
  return function;
}

//@ l2_window
// L2 persistence around one launch, as an access-policy window on the stream. The size is
// clamped to what the current device allows; a device without persisting L2 gets nothing
// set. What was changed is saved for tj_l2_end.
struct tj_l2_saved {
  bool active;
  size_t previous_limit;
};

int tj_l2_begin(const char* kernel, cudaStream_t stream, void* base, int64_t num_bytes,
                float hit_ratio, cudaAccessProperty hit, cudaAccessProperty miss,
                tj_l2_saved* saved) {
  saved->active = false;
  int device = 0;
  int max_persisting = 0;
  int max_window = 0;
  cudaError_t error = cudaGetDevice(&device);
  if (error == cudaSuccess) {
    error = cudaDeviceGetAttribute(&max_persisting, cudaDevAttrMaxPersistingL2CacheSize, device);
  }
  if (error == cudaSuccess) {
    error = cudaDeviceGetAttribute(&max_window, cudaDevAttrMaxAccessPolicyWindowSize, device);
  }
  size_t bytes = num_bytes > 0 ? (size_t)num_bytes : 0;
  if (bytes > (size_t)max_persisting) bytes = (size_t)max_persisting;
  if (bytes > (size_t)max_window) bytes = (size_t)max_window;
  if (error == cudaSuccess && bytes == 0) return 0;
  if (error == cudaSuccess) {
    error = cudaDeviceGetLimit(&saved->previous_limit, cudaLimitPersistingL2CacheSize);
  }
  if (error == cudaSuccess) error = cudaDeviceSetLimit(cudaLimitPersistingL2CacheSize, bytes);
  if (error == cudaSuccess) {
    cudaStreamAttrValue value = {};
    value.accessPolicyWindow.base_ptr = base;
    value.accessPolicyWindow.num_bytes = bytes;
    value.accessPolicyWindow.hitRatio = hit_ratio;
    value.accessPolicyWindow.hitProp = hit;
    value.accessPolicyWindow.missProp = miss;
    error = cudaStreamSetAttribute(stream, cudaStreamAttributeAccessPolicyWindow, &value);
    if (error != cudaSuccess) {
      cudaDeviceSetLimit(cudaLimitPersistingL2CacheSize, saved->previous_limit);
    }
  }
  if (error != cudaSuccess) {
    return tj_fail("call: cannot set the L2 window of kernel '%s': %s", kernel,
                   cudaGetErrorString(error));
  }
  saved->active = true;
  return 0;
}

// After the launch: the stream's window removed, persisting lines back to normal and the
// previous limit restored, so that later work is unaffected. All three are attempted.
// `launched` is tj_launch's result: after a failed launch the reset still happens and the
// launch's error stays the one reported.
int tj_l2_end(const char* kernel, cudaStream_t stream, const tj_l2_saved* saved, int launched) {
  if (!saved->active) return launched;
  cudaStreamAttrValue value = {};  // num_bytes 0 removes the window
  const cudaError_t window =
      cudaStreamSetAttribute(stream, cudaStreamAttributeAccessPolicyWindow, &value);
  const cudaError_t lines = cudaCtxResetPersistingL2Cache();
  const cudaError_t limit =
      cudaDeviceSetLimit(cudaLimitPersistingL2CacheSize, saved->previous_limit);
  const cudaError_t error = window != cudaSuccess ? window : lines != cudaSuccess ? lines : limit;
  if (error != cudaSuccess && launched == 0) {
    return tj_fail("call: cannot reset the L2 window of kernel '%s': %s", kernel,
                   cudaGetErrorString(error));
  }
  return launched;
}
