#include "cuda/l2.h"

#include <algorithm>
#include <atomic>

namespace tilejit::cuda {
namespace {

struct Observer {
  L2Observer function = nullptr;
  void* user = nullptr;
};
std::atomic<Observer*> g_observer{nullptr};

}  // namespace

size_t clamp_window_bytes(size_t num_bytes, const DeviceInfo& device) {
  size_t limit = static_cast<size_t>(std::max(device.max_persisting_l2_bytes, 0));
  size_t window = static_cast<size_t>(std::max(device.max_access_policy_window_bytes, 0));
  return std::min({num_bytes, limit, window});
}

L2Saved l2_set_window(const DriverApi& api, const DeviceInfo& device, CUstream stream,
                      const PersistingWindow& window, const char* kernel) {
  L2Saved saved;
  size_t bytes = clamp_window_bytes(window.num_bytes, device);
  if (bytes == 0) {
    return saved;
  }
  check(api.cuCtxGetLimit(&saved.previous_limit, CU_LIMIT_PERSISTING_L2_CACHE_SIZE),
        "cuCtxGetLimit(CU_LIMIT_PERSISTING_L2_CACHE_SIZE)", kernel);
  check(api.cuCtxSetLimit(CU_LIMIT_PERSISTING_L2_CACHE_SIZE, bytes),
        "cuCtxSetLimit(CU_LIMIT_PERSISTING_L2_CACHE_SIZE)", kernel);
  CUstreamAttrValue value{};
  value.accessPolicyWindow.base_ptr = window.base;
  value.accessPolicyWindow.num_bytes = bytes;
  value.accessPolicyWindow.hitRatio = window.hit_ratio;
  value.accessPolicyWindow.hitProp = window.hit_property;
  value.accessPolicyWindow.missProp = window.miss_property;
  CUresult result =
      api.cuStreamSetAttribute(stream, CU_STREAM_ATTRIBUTE_ACCESS_POLICY_WINDOW, &value);
  if (result != CUDA_SUCCESS) {
    api.cuCtxSetLimit(CU_LIMIT_PERSISTING_L2_CACHE_SIZE, saved.previous_limit);
    throw_cuda_error(result, "cuStreamSetAttribute(CU_STREAM_ATTRIBUTE_ACCESS_POLICY_WINDOW)",
                     kernel);
  }
  saved.active = true;
  if (Observer* observer = g_observer.load(std::memory_order_acquire)) {
    observer->function(stream, observer->user);
  }
  return saved;
}

void l2_reset_window(const DriverApi& api, CUstream stream, const L2Saved& saved,
                     const char* kernel) {
  if (!saved.active) {
    return;
  }
  CUstreamAttrValue value{};  // num_bytes 0 removes the window
  CUresult reset_window =
      api.cuStreamSetAttribute(stream, CU_STREAM_ATTRIBUTE_ACCESS_POLICY_WINDOW, &value);
  CUresult reset_lines = api.cuCtxResetPersistingL2Cache();
  CUresult restore = api.cuCtxSetLimit(CU_LIMIT_PERSISTING_L2_CACHE_SIZE, saved.previous_limit);
  // All three are attempted before the first failure is reported.
  check(reset_window, "cuStreamSetAttribute(CU_STREAM_ATTRIBUTE_ACCESS_POLICY_WINDOW)", kernel);
  check(reset_lines, "cuCtxResetPersistingL2Cache", kernel);
  check(restore, "cuCtxSetLimit(CU_LIMIT_PERSISTING_L2_CACHE_SIZE)", kernel);
}

void set_l2_observer(L2Observer observer, void* user) {
  // Leaked on replacement: a launch on another thread may still be reading the old one, and
  // this is a test-only hook set a handful of times per process.
  Observer* next = observer != nullptr ? new Observer{observer, user} : nullptr;
  g_observer.store(next, std::memory_order_release);
}

}  // namespace tilejit::cuda
