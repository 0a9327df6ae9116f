// L2 persistence: an access-policy window set on the stream around one launch, as the seed's
// L2_PERSISTENT_MAP_{CREATE,INIT,RESET} templates do, with the size clamped to the device.
#pragma once

#include <cstddef>

#include "cuda/driver.h"

namespace tilejit::cuda {

struct PersistingWindow {
  void* base = nullptr;
  size_t num_bytes = 0;  // before clamping
  float hit_ratio = 1.0f;
  CUaccessProperty hit_property = CU_ACCESS_PROPERTY_PERSISTING;
  CUaccessProperty miss_property = CU_ACCESS_PROPERTY_STREAMING;
};

// What l2_set_window() changed, so that l2_reset_window() can undo it.
struct L2Saved {
  bool active = false;
  size_t previous_limit = 0;
};

// Clamps num_bytes to the device's maximum persisting L2 size and maximum window size.
size_t clamp_window_bytes(size_t num_bytes, const DeviceInfo& device);

// Reads the current persisting-L2 limit, raises it to the (clamped) window size and sets the
// stream's access-policy window. A device without persisting L2 (limit 0) gets nothing set.
// The context must be current. `kernel` names the launch in errors.
L2Saved l2_set_window(const DriverApi& api, const DeviceInfo& device, CUstream stream,
                      const PersistingWindow& window, const char* kernel);
// Clears the stream's window, resets the persisting lines and restores the previous limit.
void l2_reset_window(const DriverApi& api, CUstream stream, const L2Saved& saved,
                     const char* kernel);

// Test hook: called after a window is set and before the launch it surrounds, so that a test
// can read the stream attribute while it is in force. Null (the default) calls nothing.
using L2Observer = void (*)(CUstream stream, void* user);
void set_l2_observer(L2Observer observer, void* user);

}  // namespace tilejit::cuda
