// tilejit/tensor.h — what a call takes and returns: DLPack tensors, scalars, a stream.
//
//   std::vector<float> a(n), b(n), c(n);
//   tilejit::TensorView A(a.data(), "float32", {n});        // borrowed host memory
//   kernel({A, B, C, tilejit::Arg(n)});                     // Arg: tensor or scalar
//   auto outs = kernel({A, B});                             // out_idx outputs come back owned
//   float* c = outs[0].data<float>();
//
// A framework tensor is passed as the DLTensor it exports (Arg(const dlpack::DLTensor*)).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>

#include "tilejit/dlpack.h"
#include "tilejit/dtype.h"

namespace tilejit {

inline constexpr int kMaxTensorDims = 8;

struct Device {
  int32_t type = dlpack::kDLCPU;  // a dlpack::DeviceType
  int32_t id = 0;

  static Device cpu() { return {dlpack::kDLCPU, 0}; }
  static Device cuda(int32_t id = 0) { return {dlpack::kDLCUDA, id}; }
  friend bool operator==(const Device&, const Device&) = default;
};

// A borrowed view of memory the caller owns. It carries its own shape and strides, so it
// can be built from a pointer and a brace list; as_dlpack() points into this object.
class TensorView {
 public:
  TensorView(void* data, DataType dtype, std::initializer_list<int64_t> shape,
             Device device = Device::cpu(), std::initializer_list<int64_t> strides = {});
  TensorView(void* data, std::string_view dtype, std::initializer_list<int64_t> shape,
             Device device = Device::cpu(), std::initializer_list<int64_t> strides = {})
      : TensorView(data, DataType::parse(dtype), shape, device, strides) {}
  TensorView(void* data, DataType dtype, std::span<const int64_t> shape, Device device,
             std::span<const int64_t> strides);
  TensorView(const TensorView& other);
  TensorView& operator=(const TensorView& other);

  const dlpack::DLTensor& as_dlpack() const { return dl_; }

 private:
  void point_into_self();
  dlpack::DLTensor dl_{};
  int64_t shape_[kMaxTensorDims] = {};
  int64_t strides_[kMaxTensorDims] = {};
};

// An owned tensor: what out_idx outputs come back as. Move-only; it frees its memory through
// the DLPack deleter of whoever allocated it (tilejit, or a framework's allocator).
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(dlpack::DLManagedTensorVersioned* managed) : managed_(managed) {}
  Tensor(Tensor&& other) noexcept : managed_(other.release()) {}
  Tensor& operator=(Tensor&& other) noexcept;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  ~Tensor();

  // Allocates compact row-major memory on `device` (CUDA through the driver).
  static Tensor empty(DataType dtype, std::span<const int64_t> shape,
                      Device device = Device::cpu());

  explicit operator bool() const { return managed_ != nullptr; }
  const dlpack::DLTensor& as_dlpack() const { return managed_->dl_tensor; }
  DataType dtype() const { return DataType::from_dlpack(managed_->dl_tensor.dtype); }
  std::span<const int64_t> shape() const {
    return {managed_->dl_tensor.shape, static_cast<size_t>(managed_->dl_tensor.ndim)};
  }
  Device device() const {
    return {managed_->dl_tensor.device.device_type, managed_->dl_tensor.device.device_id};
  }
  int64_t numel() const;
  void* data() const {
    return static_cast<char*>(managed_->dl_tensor.data) + managed_->dl_tensor.byte_offset;
  }
  template <class T>
  T* data() const {
    return static_cast<T*>(data());
  }
  // Hands ownership to the caller (e.g. to wrap it as a framework tensor).
  dlpack::DLManagedTensorVersioned* release() noexcept;

 private:
  dlpack::DLManagedTensorVersioned* managed_ = nullptr;
};

// One argument of a call: a tensor (borrowed DLTensor) or a scalar. Integers and floats
// are range-checked against the parameter's dtype by the Binder.
class Arg {
 public:
  enum class Kind : uint8_t { kTensor, kInt, kFloat, kPointer, kBytes };

  Arg(const dlpack::DLTensor* tensor) : kind_(Kind::kTensor), tensor_(tensor) {}  // NOLINT
  Arg(const dlpack::DLTensor& tensor) : Arg(&tensor) {}                           // NOLINT
  Arg(const TensorView& view) : Arg(&view.as_dlpack()) {}                         // NOLINT
  Arg(const Tensor& tensor) : Arg(&tensor.as_dlpack()) {}                         // NOLINT
  Arg(int value) : kind_(Kind::kInt), int_(value) {}                              // NOLINT
  Arg(long value) : kind_(Kind::kInt), int_(value) {}                             // NOLINT
  Arg(long long value) : kind_(Kind::kInt), int_(value) {}                        // NOLINT
  Arg(unsigned value) : kind_(Kind::kInt), int_(value) {}                         // NOLINT
  Arg(bool value) : kind_(Kind::kInt), int_(value ? 1 : 0) {}                     // NOLINT
  Arg(double value) : kind_(Kind::kFloat), float_(value) {}                       // NOLINT
  Arg(float value) : kind_(Kind::kFloat), float_(value) {}                        // NOLINT
  // A tensor its owner marks read-only (DLPack's DLPACK_FLAG_BITMASK_READ_ONLY): the Binder
  // refuses it for a parameter the kernels may write.
  static Arg read_only(const dlpack::DLTensor* tensor) {
    Arg a(tensor);
    a.read_only_ = true;
    return a;
  }
  // A versioned DLPack tensor, read-only when its flags say so.
  static Arg from_managed(const dlpack::DLManagedTensorVersioned& managed) {
    return (managed.flags & dlpack::kDLPackFlagBitmaskReadOnly) != 0 ? read_only(&managed.dl_tensor)
                                                                     : Arg(&managed.dl_tensor);
  }
  // A raw pointer for a `handle` parameter.
  static Arg pointer(void* p) {
    Arg a(0);
    a.kind_ = Kind::kPointer;
    a.pointer_ = p;
    return a;
  }

  // A struct parameter's value: its bytes as the C struct its fields describe lays them out
  // (size and padding included), e.g. Arg::bytes(&params, sizeof params). Borrowed until the
  // call has bound it.
  static Arg bytes(const void* data, uint32_t size) {
    Arg a(0);
    a.kind_ = Kind::kBytes;
    a.bytes_ = data;
    a.size_ = size;
    return a;
  }

  Kind kind() const { return kind_; }
  const dlpack::DLTensor* tensor() const { return tensor_; }
  bool read_only() const { return read_only_; }
  int64_t int_value() const { return int_; }
  double float_value() const { return float_; }
  void* pointer_value() const { return pointer_; }
  const void* bytes_data() const { return bytes_; }
  uint32_t bytes_size() const { return size_; }

 private:
  Kind kind_;
  bool read_only_ = false;  // tensors only
  uint32_t size_ = 0;       // bytes only
  union {
    const dlpack::DLTensor* tensor_;
    int64_t int_;
    double float_;
    void* pointer_;
    const void* bytes_;
  };
};

// A borrowed stream handle (CUstream / hipStream_t); null is the legacy default stream.
// tilejit never destroys a stream it did not create.
class StreamRef {
 public:
  constexpr StreamRef() = default;
  constexpr explicit StreamRef(void* handle) : handle_(handle) {}
  constexpr void* handle() const { return handle_; }

 private:
  void* handle_ = nullptr;
};

}  // namespace tilejit
