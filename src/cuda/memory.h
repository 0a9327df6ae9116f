// Device memory for tensors tilejit allocates itself (Tensor::empty on a CUDA device).
#pragma once

#include <cstdint>
#include <span>

#include "tilejit/tensor.h"

namespace tilejit::cuda {

// Allocates compact row-major memory with cuMemAlloc on device `device.id` (its primary context)
// and wraps it as a DLManagedTensorVersioned whose deleter frees it with cuMemFree. The caller
// (Tensor::empty) has checked the shape. Throws NotAvailableError without a driver,
// ArgumentError for a bad device, CudaError when the allocation fails.
dlpack::DLManagedTensorVersioned* allocate_tensor(DataType dtype, std::span<const int64_t> shape,
                                                  Device device);

}  // namespace tilejit::cuda
