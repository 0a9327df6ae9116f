// TensorView (borrowed) and Tensor (owned DLPack 1.1 managed tensor). Tensor::empty, which
// needs the devices, is in src/backend/tensor_empty.cc.
#include "tilejit/tensor.h"

#include <string>

#include <fmt/format.h>

#include "tilejit/errors.h"

namespace tilejit {
namespace {

void check_rank(size_t ndim, std::string_view what) {
  if (ndim > static_cast<size_t>(kMaxTensorDims)) {
    throw ArgumentError(fmt::format("{}: {} dimensions given, tilejit supports at most {}", what,
                                    ndim, kMaxTensorDims));
  }
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

}  // namespace tilejit
