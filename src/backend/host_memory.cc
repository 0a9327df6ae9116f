// Host tensors: what the cpu backend's outputs and Tensor::empty on kDLCPU allocate.
#include <cstdlib>
#include <new>

#include "backend/tensor_memory.h"

namespace tilejit::detail {
namespace {

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

}  // namespace

Tensor host_tensor(DataType dtype, std::span<const int64_t> shape) {
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

}  // namespace tilejit::detail
