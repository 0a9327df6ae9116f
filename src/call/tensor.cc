// TensorView (borrowed), Tensor (owned DLPack 1.1 managed tensor) and Tensor::empty.
#include "tilejit/tensor.h"

#include <cstdlib>
#include <new>
#include <string>

#include <fmt/format.h>

#include "cuda/memory.h"
#include "tilejit/errors.h"

namespace tilejit {
namespace {

// Host allocations are aligned for the widest vector loads a C kernel may issue.
constexpr size_t kHostAlignment = 64;

void check_rank(size_t ndim, std::string_view what) {
  if (ndim > static_cast<size_t>(kMaxTensorDims)) {
    throw ArgumentError(fmt::format("{}: {} dimensions given, tilejit supports at most {}", what,
                                    ndim, kMaxTensorDims));
  }
}

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

Tensor empty_host(DataType dtype, std::span<const int64_t> shape) {
  int64_t count = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0) {
      throw ArgumentError(fmt::format("Tensor::empty: dimension {} is negative ({})", d, shape[d]));
    }
    if (__builtin_mul_overflow(count, shape[d], &count)) {
      throw ArgumentError("Tensor::empty: the element count overflows int64");
    }
  }
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

TensorView::TensorView(void* data, DataType dtype, std::initializer_list<int64_t> shape,
                       Device device, std::initializer_list<int64_t> strides)
    : TensorView(data, dtype, std::span<const int64_t>(shape.begin(), shape.size()), device,
                 std::span<const int64_t>(strides.begin(), strides.size())) {}

TensorView::TensorView(void* data, DataType dtype, std::span<const int64_t> shape, Device device,
                       std::span<const int64_t> strides) {
  check_rank(shape.size(), "TensorView");
  if (!strides.empty() && strides.size() != shape.size()) {
    throw ArgumentError(fmt::format("TensorView: {} strides given for {} dimensions",
                                    strides.size(), shape.size()));
  }
  dl_.data = data;
  dl_.device = {device.type, device.id};
  dl_.ndim = static_cast<int32_t>(shape.size());
  dl_.dtype = dtype.to_dlpack();
  dl_.byte_offset = 0;
  for (size_t d = 0; d < shape.size(); ++d) shape_[d] = shape[d];
  for (size_t d = 0; d < strides.size(); ++d) strides_[d] = strides[d];
  // Empty strides mean compact row-major, which DLPack spells as a null strides pointer.
  dl_.strides = strides.empty() ? nullptr : strides_;
  point_into_self();
}

TensorView::TensorView(const TensorView& other) {
  *this = other;
}

TensorView& TensorView::operator=(const TensorView& other) {
  if (this != &other) {
    dl_ = other.dl_;
    for (int d = 0; d < kMaxTensorDims; ++d) {
      shape_[d] = other.shape_[d];
      strides_[d] = other.strides_[d];
    }
    point_into_self();
  }
  return *this;
}

// The DLTensor must point at this object's arrays, never at those of the view it was copied
// from (which may be gone by the time the copy is used).
void TensorView::point_into_self() {
  dl_.shape = shape_;
  if (dl_.strides != nullptr) dl_.strides = strides_;
}

Tensor& Tensor::operator=(Tensor&& other) noexcept {
  if (this != &other) {
    dlpack::DLManagedTensorVersioned* incoming = other.release();
    if (managed_ != nullptr && managed_->deleter != nullptr) managed_->deleter(managed_);
    managed_ = incoming;
  }
  return *this;
}

Tensor::~Tensor() {
  if (managed_ != nullptr && managed_->deleter != nullptr) managed_->deleter(managed_);
}

dlpack::DLManagedTensorVersioned* Tensor::release() noexcept {
  dlpack::DLManagedTensorVersioned* managed = managed_;
  managed_ = nullptr;
  return managed;
}

int64_t Tensor::numel() const {
  int64_t count = 1;
  for (int64_t extent : shape()) count *= extent;
  return count;
}

Tensor Tensor::empty(DataType dtype, std::span<const int64_t> shape, Device device) {
  check_rank(shape.size(), "Tensor::empty");
  switch (device.type) {
    case dlpack::kDLCPU:
      return empty_host(dtype, shape);
    case dlpack::kDLCUDA:
      return Tensor(cuda::allocate_tensor(dtype, shape, device));
    default:
      throw NotAvailableError(
          fmt::format("Tensor::empty: cannot allocate on device type {} (id {}); tilejit allocates "
                      "host (kDLCPU) and CUDA (kDLCUDA) tensors",
                      device.type, device.id));
  }
}

}  // namespace tilejit
