// The memory of tensors tilejit allocates itself: call outputs (Executor::allocate_output)
// and Tensor::empty, over the same two functions. Every shape is checked first (at most
// kMaxTensorDims extents, none negative, an element count that fits int64); errors name
// Tensor::empty, the public face of both.
#pragma once

#include <cstdint>
#include <span>

#include "tilejit/tensor.h"

namespace tilejit::detail {

// Compact row-major host memory, aligned for the widest vector loads a C kernel may issue.
Tensor host_tensor(DataType dtype, std::span<const int64_t> shape);

// Compact row-major CUDA memory on `device` (cuda::allocate_tensor).
Tensor cuda_tensor(DataType dtype, std::span<const int64_t> shape, Device device);

// The NotAvailableError for a device tilejit cannot allocate on.
[[noreturn]] void refuse_tensor_device(Device device);

// Checks a shape as above; its element count.
int64_t checked_element_count(std::span<const int64_t> shape);

}  // namespace tilejit::detail
