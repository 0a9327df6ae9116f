// Device memory for tensors tilejit allocates itself (call outputs of the CUDA backends,
// Tensor::empty on a CUDA device: src/backend/tensor_memory.h).
#pragma once

#include <cstdint>
#include <span>

#include "tilejit/tensor.h"

namespace tilejit::cuda {

// Allocates compact row-major memory with cuMemAlloc on device `device.id` (its primary context)
// and wraps it as a DLManagedTensorVersioned whose deleter frees it with cuMemFree. The caller
// (detail::cuda_tensor) has checked the shape. Throws NotAvailableError without a driver,
// ArgumentError for a bad device, CudaError when the allocation fails.
dlpack::DLManagedTensorVersioned* allocate_tensor(DataType dtype, std::span<const int64_t> shape,
                                                  Device device);

}  // namespace tilejit::cuda
