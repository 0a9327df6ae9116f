#include "cuda/driver.h"

#include <dlfcn.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "tilejit/errors.h"
#include "toolchain/toolchain.h"

namespace tilejit::cuda {
namespace {

// The ABI version asked of cuGetProcAddress: every signature in driver_api.h is the one CUDA
// 12.0 defines, and 12.0 is the first driver with cuLibrary* and cuTensorMapEncode*.
constexpr int kAbiVersion = 12000;

struct LoadedDriver {
  DriverApi api;
  std::string error;  // empty when loaded
};

template <class Fn>
bool resolve(PFN_cuGetProcAddress get_proc, const char* name, Fn& out, std::string& error) {
  void* pfn = nullptr;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  // LEGACY_STREAM: a null stream means the legacy default stream, as StreamRef documents;
  // the per-thread variants (_ptsz) would silently change that.
  CUresult result = get_proc(name, &pfn, kAbiVersion, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &status);
  if (result != CUDA_SUCCESS || status != CU_GET_PROC_ADDRESS_SUCCESS || pfn == nullptr) {
    error = fmt::format(
        "the CUDA driver (libcuda.so.1) lacks {} for ABI version {} (status {}); a driver for "
        "CUDA 12.0 or newer is required",
        name, kAbiVersion, static_cast<int>(status));
    return false;
  }
  out = reinterpret_cast<Fn>(pfn);
  return true;
}

LoadedDriver load_driver() {
  LoadedDriver loaded;
  // Never dlclose'd: function pointers into it live for the whole process.
  void* handle = nullptr;
  {
    const std::lock_guard lock(detail::dynamic_loader_mutex());
    handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  }
  if (handle == nullptr) {
    const char* why = dlerror();
    loaded.error = fmt::format(
        "CUDA is not available: the NVIDIA driver library libcuda.so.1 could not be loaded ({})",
        why != nullptr ? why : "not found");
    return loaded;
  }
  auto get_proc = reinterpret_cast<PFN_cuGetProcAddress>(dlsym(handle, "cuGetProcAddress_v2"));
  auto init = reinterpret_cast<PFN_cuInit>(dlsym(handle, "cuInit"));
  if (get_proc == nullptr || init == nullptr) {
    loaded.error =
        "CUDA is not available: libcuda.so.1 has no cuGetProcAddress_v2; a driver for CUDA "
        "12.0 or newer is required";
    return loaded;
  }
  DriverApi& api = loaded.api;
  std::string& error = loaded.error;
  bool ok =
      resolve(get_proc, "cuGetErrorString", api.cuGetErrorString, error) &&
      resolve(get_proc, "cuGetErrorName", api.cuGetErrorName, error) &&
      resolve(get_proc, "cuDriverGetVersion", api.cuDriverGetVersion, error) &&
      resolve(get_proc, "cuDeviceGet", api.cuDeviceGet, error) &&
      resolve(get_proc, "cuDeviceGetCount", api.cuDeviceGetCount, error) &&
      resolve(get_proc, "cuDeviceGetName", api.cuDeviceGetName, error) &&
      resolve(get_proc, "cuDeviceTotalMem", api.cuDeviceTotalMem, error) &&
      resolve(get_proc, "cuDeviceGetAttribute", api.cuDeviceGetAttribute, error) &&
      resolve(get_proc, "cuDevicePrimaryCtxRetain", api.cuDevicePrimaryCtxRetain, error) &&
      resolve(get_proc, "cuCtxGetCurrent", api.cuCtxGetCurrent, error) &&
      resolve(get_proc, "cuCtxSetCurrent", api.cuCtxSetCurrent, error) &&
      resolve(get_proc, "cuCtxGetDevice", api.cuCtxGetDevice, error) &&
      resolve(get_proc, "cuCtxGetLimit", api.cuCtxGetLimit, error) &&
      resolve(get_proc, "cuCtxSetLimit", api.cuCtxSetLimit, error) &&
      resolve(get_proc, "cuCtxResetPersistingL2Cache", api.cuCtxResetPersistingL2Cache, error) &&
      resolve(get_proc, "cuLibraryLoadData", api.cuLibraryLoadData, error) &&
      resolve(get_proc, "cuLibraryUnload", api.cuLibraryUnload, error) &&
      resolve(get_proc, "cuLibraryGetKernel", api.cuLibraryGetKernel, error) &&
      resolve(get_proc, "cuLibraryGetGlobal", api.cuLibraryGetGlobal, error) &&
      resolve(get_proc, "cuKernelGetFunction", api.cuKernelGetFunction, error) &&
      resolve(get_proc, "cuKernelGetAttribute", api.cuKernelGetAttribute, error) &&
      resolve(get_proc, "cuKernelSetAttribute", api.cuKernelSetAttribute, error) &&
      resolve(get_proc, "cuLaunchKernelEx", api.cuLaunchKernelEx, error) &&
      resolve(get_proc, "cuStreamCreate", api.cuStreamCreate, error) &&
      resolve(get_proc, "cuStreamDestroy", api.cuStreamDestroy, error) &&
      resolve(get_proc, "cuStreamSynchronize", api.cuStreamSynchronize, error) &&
      resolve(get_proc, "cuStreamGetAttribute", api.cuStreamGetAttribute, error) &&
      resolve(get_proc, "cuStreamSetAttribute", api.cuStreamSetAttribute, error) &&
      resolve(get_proc, "cuMemAlloc", api.cuMemAlloc, error) &&
      resolve(get_proc, "cuMemFree", api.cuMemFree, error) &&
      resolve(get_proc, "cuMemcpyHtoD", api.cuMemcpyHtoD, error) &&
      resolve(get_proc, "cuMemcpyDtoH", api.cuMemcpyDtoH, error) &&
      resolve(get_proc, "cuMemsetD8", api.cuMemsetD8, error) &&
      resolve(get_proc, "cuTensorMapEncodeTiled", api.cuTensorMapEncodeTiled, error) &&
      resolve(get_proc, "cuTensorMapEncodeIm2col", api.cuTensorMapEncodeIm2col, error);
  if (!ok) {
    error = "CUDA is not available: " + error;
    return loaded;
  }
  CUresult result = init(0);
  if (result != CUDA_SUCCESS) {
    const char* name = nullptr;
    const char* text = nullptr;
    api.cuGetErrorName(result, &name);
    api.cuGetErrorString(result, &text);
    error = fmt::format("CUDA is not available: cuInit failed with {}: {}",
                        name != nullptr ? name : "an unknown error",
                        text != nullptr ? text : std::to_string(result));
    return loaded;
  }
  api.cuDriverGetVersion(&api.version);
  return loaded;
}

const LoadedDriver& loaded_driver() {
  // A function-local static is initialized once, thread-safely (C++11 magic statics).
  static const LoadedDriver loaded = load_driver();
  return loaded;
}

std::mutex g_device_mutex;
std::array<std::atomic<const DeviceInfo*>, kMaxDevices> g_devices{};

}  // namespace

const DriverApi& driver() {
  const LoadedDriver& loaded = loaded_driver();
  if (!loaded.error.empty()) {
    throw NotAvailableError(loaded.error);
  }
  return loaded.api;
}

bool driver_available(std::string* why) {
  const LoadedDriver& loaded = loaded_driver();
  if (!loaded.error.empty() && why != nullptr) {
    *why = loaded.error;
  }
  return loaded.error.empty();
}

std::string error_string(CUresult result) {
  const LoadedDriver& loaded = loaded_driver();
  const char* name = nullptr;
  const char* text = nullptr;
  if (loaded.api.cuGetErrorName != nullptr) {
    loaded.api.cuGetErrorName(result, &name);
    loaded.api.cuGetErrorString(result, &text);
  }
  if (name == nullptr) {
    return fmt::format("CUresult {}", result);
  }
  return fmt::format("{}: {}", name, text != nullptr ? text : "");
}

void throw_cuda_error(CUresult result, const char* call, std::string_view kernel) {
  if (kernel.empty()) {
    throw CudaError(fmt::format("{} failed: {}", call, error_string(result)), result);
  }
  throw CudaError(fmt::format("{} failed for kernel '{}': {}", call, kernel, error_string(result)),
                  result);
}

int device_count() {
  const DriverApi& api = driver();
  int count = 0;
  check(api.cuDeviceGetCount(&count), "cuDeviceGetCount");
  return count;
}

const DeviceInfo& device_info(int ordinal) {
  if (ordinal >= 0 && ordinal < kMaxDevices) {
    if (const DeviceInfo* known = g_devices[ordinal].load(std::memory_order_acquire)) {
      return *known;
    }
  }
  const DriverApi& api = driver();
  int count = device_count();
  if (ordinal < 0 || ordinal >= count || ordinal >= kMaxDevices) {
    throw ArgumentError(fmt::format("CUDA device {} does not exist: this machine has {} device{}",
                                    ordinal, count, count == 1 ? "" : "s"));
  }
  std::lock_guard lock(g_device_mutex);
  if (const DeviceInfo* known = g_devices[ordinal].load(std::memory_order_acquire)) {
    return *known;
  }
  auto info = std::make_unique<DeviceInfo>();
  info->ordinal = ordinal;
  check(api.cuDeviceGet(&info->device, ordinal), "cuDeviceGet");
  auto attribute = [&](CUdevice_attribute which) {
    int value = 0;
    check(api.cuDeviceGetAttribute(&value, which, info->device), "cuDeviceGetAttribute");
    return value;
  };
  info->cc_major = attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  info->cc_minor = attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  info->multiprocessors = attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  info->max_shared_per_block = attribute(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK);
  info->max_shared_per_block_optin =
      attribute(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
  info->l2_bytes = attribute(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
  info->max_persisting_l2_bytes = attribute(CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE);
  info->max_access_policy_window_bytes =
      attribute(CU_DEVICE_ATTRIBUTE_MAX_ACCESS_POLICY_WINDOW_SIZE);
  info->cooperative_launch = attribute(CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH) != 0;
  char name[256] = {};
  check(api.cuDeviceGetName(name, sizeof(name) - 1, info->device), "cuDeviceGetName");
  info->name = name;
  check(api.cuDeviceTotalMem(&info->total_memory, info->device), "cuDeviceTotalMem");
  check(api.cuDevicePrimaryCtxRetain(&info->context, info->device), "cuDevicePrimaryCtxRetain");
  // Published once and never freed: launch plans hold plain pointers to it.
  const DeviceInfo* published = info.release();
  g_devices[ordinal].store(published, std::memory_order_release);
  return *published;
}

void synchronize(int device, void* stream, std::string_view what) {
  const DriverApi& api = driver();
  const ScopedContext context(api, device_info(device));
  check(api.cuStreamSynchronize(static_cast<CUstream>(stream)), "cuStreamSynchronize", what);
}

}  // namespace tilejit::cuda
