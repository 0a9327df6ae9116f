// Framework tensors in and out of a call, through DLPack.
//
// A framework that implements DLPack 1.3's C exchange API (torch 2.10+: a PyCapsule named
// "dlpack_exchange_api" in the type attribute __dlpack_c_exchange_api__) is read with plain C
// calls: no Python call per tensor, its current stream read just in time, outputs allocated by
// its own allocator and returned as its tensors. Anything else with __dlpack__ (numpy, cupy,
// jax) goes through the Python protocol.
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>
#include <span>

#include "tilejit/dlpack.h"
#include "tilejit/kernel.h"

namespace tilejit::python {

// The ABI of dlpack.h 1.3 (DLPackExchangeAPI and its function types), declared here because
// tilejit's dlpack.h follows DLPack 1.1. Field order and types are those of the header.
struct DLPackExchangeAPIHeader {
  dlpack::DLPackVersion version;
  DLPackExchangeAPIHeader* prev_api;
};
using DLPackSetError = void (*)(void* error_ctx, const char* kind, const char* message);
struct DLPackExchangeAPI {
  DLPackExchangeAPIHeader header;
  int (*managed_tensor_allocator)(dlpack::DLTensor* prototype,
                                  dlpack::DLManagedTensorVersioned** out, void* error_ctx,
                                  DLPackSetError set_error);
  int (*managed_tensor_from_py_object_no_sync)(void* py_object,
                                               dlpack::DLManagedTensorVersioned** out);
  int (*managed_tensor_to_py_object_no_sync)(dlpack::DLManagedTensorVersioned* tensor,
                                             void** out_py_object);
  int (*dltensor_from_py_object_no_sync)(void* py_object, dlpack::DLTensor* out);  // may be null
  int (*current_work_stream)(int32_t device_type, int32_t device_id, void** out_stream);
};

// Raises the Python exception a framework's C function set on failure (dlpack.h's contract),
// or a tilejit.Error naming `call` when it broke that contract and set none.
[[noreturn]] void raise_framework_failure(const char* call);

// The exchange API of `type` (major version 1, walking prev_api when needed), or null when
// the type has none. Looked up once per type: the answer is cached, and the type kept alive
// so that its address cannot be reused by another type.
const DLPackExchangeAPI* exchange_api_of(PyTypeObject* type);

// Allocates out_idx outputs with a framework's allocator (e.g. torch's caching allocator).
// `default_device_id`: where a call with no tensor argument goes (the framework's current
// device).
class ExchangeAllocator final : public OutputAllocator {
 public:
  explicit ExchangeAllocator(const DLPackExchangeAPI* api, int32_t default_device_id = 0)
      : api_(api), default_device_id_(default_device_id) {}
  Tensor allocate(DataType dtype, std::span<const int64_t> shape, Device device) const override;
  int32_t default_device_id() const override { return default_device_id_; }

 private:
  const DLPackExchangeAPI* api_;
  int32_t default_device_id_;
};

// Views one tensor through the Python protocol (`__dlpack_device__`, then
// `__dlpack__(stream=..., max_version=(1, 1))`), for frameworks without the exchange API.
// The view stays valid while `capsule` lives; the capsule is not consumed, so its producer
// frees the tensor when the capsule dies. `stream` is the stream the kernel will run on
// (null: the legacy default stream), passed so the producer orders its pending work first.
struct ProtocolTensor {
  PyObject* capsule = nullptr;  // new reference
  const dlpack::DLTensor* tensor = nullptr;
};
ProtocolTensor view_through_protocol(PyObject* object, void* stream, const char* param_name);

// True when `object` looks like a tensor to tilejit (it has __dlpack__).
bool has_dlpack(PyObject* object);

// Turns an output tilejit allocated into a tensor of the framework that `like_type` belongs
// to: `<top-level module of like_type>.from_dlpack(...)` (numpy.from_dlpack, cupy.from_dlpack),
// numpy for host memory when there is no such type, else a tilejit._core.DLPackTensor.
PyObject* to_framework(Tensor tensor, PyTypeObject* like_type);

// Registers tilejit._core.DLPackTensor, the exporter behind to_framework.
void bind_dlpack_tensor(nanobind::module_& m);

}  // namespace tilejit::python
