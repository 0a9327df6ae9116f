// Tensor::empty, CUDA tensors and the shape checks of tensor_memory.h. This sits above call/
// and cuda/ so that the Binder never reaches a driver: it gets outputs from an
// OutputAllocator, and the default one (src/compile/kernel.cc) asks the Kernel's executor.
#include <fmt/format.h>

#include "backend/backend.h"
#include "backend/tensor_memory.h"
#include "cuda/memory.h"
#include "tilejit/errors.h"

namespace tilejit {
namespace detail {

namespace {

void check_rank(std::span<const int64_t> shape) {
  if (shape.size() > static_cast<size_t>(kMaxTensorDims)) {
    throw ArgumentError(
        fmt::format("Tensor::empty: {} dimensions given, tilejit supports at most {}", shape.size(),
                    kMaxTensorDims));
  }
}

}  // namespace

int64_t checked_element_count(std::span<const int64_t> shape) {
  check_rank(shape);
  int64_t count = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0) {
      throw ArgumentError(fmt::format("Tensor::empty: dimension {} is negative ({})", d, shape[d]));
    }
    if (__builtin_mul_overflow(count, shape[d], &count)) {
      throw ArgumentError("Tensor::empty: the element count overflows int64");
    }
  }
  return count;
}

Tensor cuda_tensor(DataType dtype, std::span<const int64_t> shape, Device device) {
  checked_element_count(shape);
  return Tensor(cuda::allocate_tensor(dtype, shape, device));
}

void refuse_tensor_device(Device device) {
  throw NotAvailableError(
      fmt::format("Tensor::empty: cannot allocate on device type {} (id {}); tilejit allocates "
                  "host (kDLCPU) and CUDA (kDLCUDA) tensors",
                  device.type, device.id));
}

}  // namespace detail

// A user names a device, not a backend: the device type picks the allocation.
Tensor Tensor::empty(DataType dtype, std::span<const int64_t> shape, Device device) {
  switch (device.type) {
    case dlpack::kDLCPU:
      return detail::host_tensor(dtype, shape);
    case dlpack::kDLCUDA:
      return detail::cuda_tensor(dtype, shape, device);
    default:
      detail::check_rank(shape);  // too many dimensions is reported first, as it always was
      detail::refuse_tensor_device(device);
  }
}

}  // namespace tilejit
