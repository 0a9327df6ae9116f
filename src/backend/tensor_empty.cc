// Tensor::empty: host memory here, CUDA memory through src/cuda/memory.h. It sits above call/
// and cuda/ so that the Binder never reaches a driver: it gets outputs from an
// OutputAllocator, and the default one (src/compile/kernel.cc) calls Tensor::empty.
#include <cstdlib>
#include <new>

#include <fmt/format.h>

#include "cuda/memory.h"
#include "tilejit/errors.h"
#include "tilejit/tensor.h"

namespace tilejit {
namespace {

// Host allocations are aligned for the widest vector loads a C kernel may issue.
constexpr size_t kHostAlignment = 64;

// One heap block owns the DLPack header and the shape; the data is a separate aligned block.
struct HostTensorBlock {
  dlpack::DLManagedTensorVersioned managed{};
  int64_t shape[kMaxTensorDims] = {};
};

void delete_host_tensor(dlpack::DLManagedTensorVersioned* self) {
  auto* block = static_cast<HostTensorBlock*>(self->manager_ctx);
  std::free(self->dl_tensor.data);
  delete block;
}

// Checks every extent of a shape Tensor::empty is to allocate; the element count.
int64_t checked_element_count(std::span<const int64_t> shape) {
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

Tensor empty_host(DataType dtype, std::span<const int64_t> shape) {
  const int64_t count = checked_element_count(shape);
  const int64_t bytes = dtype.storage_bytes(count);
  // aligned_alloc wants a multiple of the alignment; a zero-size tensor still gets a valid,
  // non-null pointer so that it passes the Binder's null check.
  const size_t rounded =
      (static_cast<size_t>(bytes) + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  void* data = std::aligned_alloc(kHostAlignment, rounded == 0 ? kHostAlignment : rounded);
  if (data == nullptr) {
    throw std::bad_alloc();
  }
  auto* block = new (std::nothrow) HostTensorBlock;
  if (block == nullptr) {
    std::free(data);
    throw std::bad_alloc();
  }
  for (size_t d = 0; d < shape.size(); ++d) block->shape[d] = shape[d];
  dlpack::DLManagedTensorVersioned& m = block->managed;
  m.version = {dlpack::kDLPackMajorVersion, dlpack::kDLPackMinorVersion};
  m.manager_ctx = block;
  m.deleter = delete_host_tensor;
  m.flags = 0;
  m.dl_tensor.data = data;
  m.dl_tensor.device = {dlpack::kDLCPU, 0};
  m.dl_tensor.ndim = static_cast<int32_t>(shape.size());
  m.dl_tensor.dtype = dtype.to_dlpack();
  m.dl_tensor.shape = block->shape;
  m.dl_tensor.strides = nullptr;  // compact row-major
  m.dl_tensor.byte_offset = 0;
  return Tensor(&m);
}

}  // namespace

Tensor Tensor::empty(DataType dtype, std::span<const int64_t> shape, Device device) {
  if (shape.size() > static_cast<size_t>(kMaxTensorDims)) {
    throw ArgumentError(
        fmt::format("Tensor::empty: {} dimensions given, tilejit supports at most {}", shape.size(),
                    kMaxTensorDims));
  }
  switch (device.type) {
    case dlpack::kDLCPU:
      return empty_host(dtype, shape);
    case dlpack::kDLCUDA:
      checked_element_count(shape);
      return Tensor(cuda::allocate_tensor(dtype, shape, device));
    default:
      throw NotAvailableError(
          fmt::format("Tensor::empty: cannot allocate on device type {} (id {}); tilejit allocates "
                      "host (kDLCPU) and CUDA (kDLCUDA) tensors",
                      device.type, device.id));
  }
}

}  // namespace tilejit
