#include "cuda/memory.h"

#include <memory>

#include <fmt/format.h>

#include "cuda/driver.h"
#include "tilejit/errors.h"

namespace tilejit::cuda {
namespace {

// One allocation: the managed tensor, its shape storage and the device pointer together.
struct DeviceTensor {
  dlpack::DLManagedTensorVersioned managed{};
  int64_t shape[kMaxTensorDims] = {};
  CUdeviceptr pointer = 0;
  int device = 0;
};

void free_device_tensor(dlpack::DLManagedTensorVersioned* self) {
  std::unique_ptr<DeviceTensor> owner(static_cast<DeviceTensor*>(self->manager_ctx));
  if (owner->pointer != 0) {
    // A deleter must not throw; a failure here (a context torn down at exit) leaks the memory.
    std::string why;
    if (driver_available(&why)) {
      const DriverApi& api = driver();
      const DeviceInfo& info = device_info(owner->device);
      CUcontext previous = nullptr;
      api.cuCtxGetCurrent(&previous);
      api.cuCtxSetCurrent(info.context);
      api.cuMemFree(owner->pointer);
      api.cuCtxSetCurrent(previous);
    }
  }
}

}  // namespace

dlpack::DLManagedTensorVersioned* allocate_tensor(DataType dtype, std::span<const int64_t> shape,
                                                  Device device) {
  int64_t count = 1;  // Tensor::empty has checked the rank and every extent
  for (int64_t extent : shape) count *= extent;
  const DriverApi& api = driver();
  const DeviceInfo& info = device_info(device.id);
  auto tensor = std::make_unique<DeviceTensor>();
  tensor->device = device.id;
  int64_t bytes = dtype.storage_bytes(count);
  if (bytes > 0) {
    CUresult result;
    {
      const ScopedContext context(api, info);
      result = api.cuMemAlloc(&tensor->pointer, static_cast<size_t>(bytes));
    }
    if (result != CUDA_SUCCESS) {
      throw CudaError(fmt::format("cuMemAlloc of {} bytes on CUDA device {} failed: {}", bytes,
                                  device.id, error_string(result)),
                      result);
    }
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    tensor->shape[i] = shape[i];
  }
  dlpack::DLManagedTensorVersioned& m = tensor->managed;
  m.version = {dlpack::kDLPackMajorVersion, dlpack::kDLPackMinorVersion};
  m.manager_ctx = tensor.get();
  m.deleter = free_device_tensor;
  m.flags = 0;
  m.dl_tensor.data = reinterpret_cast<void*>(static_cast<uintptr_t>(tensor->pointer));
  m.dl_tensor.device = {device.type, device.id};
  m.dl_tensor.ndim = static_cast<int32_t>(shape.size());
  m.dl_tensor.dtype = dtype.to_dlpack();
  m.dl_tensor.shape = tensor->shape;
  m.dl_tensor.strides = nullptr;
  m.dl_tensor.byte_offset = 0;
  return &tensor.release()->managed;
}

}  // namespace tilejit::cuda
