#include "dlpack_exchange.h"

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <array>
#include <cstring>
#include <string>

#include "tilejit/errors.h"

namespace nb = nanobind;

namespace tilejit::python {
namespace {

constexpr const char* kExchangeCapsuleName = "dlpack_exchange_api";
constexpr const char* kVersionedName = "dltensor_versioned";
constexpr const char* kLegacyName = "dltensor";

// DLPack 0.x's managed tensor, what a `__dlpack__()` without max_version hands out.
struct DLManagedTensorLegacy {
  dlpack::DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorLegacy* self);
};

const DLPackExchangeAPI* supported_version(const DLPackExchangeAPI* api) {
  for (const DLPackExchangeAPIHeader* h = &api->header; h != nullptr; h = h->prev_api) {
    if (h->version.major == 1) {
      // The header is the struct's first member, so it and the struct share an address.
      return reinterpret_cast<const DLPackExchangeAPI*>(h);
    }
  }
  return nullptr;
}

const DLPackExchangeAPI* lookup_exchange_api(PyTypeObject* type) {
  PyObject* capsule =
      PyObject_GetAttrString(reinterpret_cast<PyObject*>(type), "__dlpack_c_exchange_api__");
  if (capsule == nullptr) {
    PyErr_Clear();
    return nullptr;
  }
  const DLPackExchangeAPI* api = nullptr;
  if (PyCapsule_IsValid(capsule, kExchangeCapsuleName)) {
    api = supported_version(
        static_cast<const DLPackExchangeAPI*>(PyCapsule_GetPointer(capsule, kExchangeCapsuleName)));
  }
  // The table lives as long as the process (dlpack.h); the capsule need not be kept.
  Py_DECREF(capsule);
  if (api != nullptr &&
      (api->managed_tensor_allocator == nullptr ||
       api->managed_tensor_to_py_object_no_sync == nullptr || api->current_work_stream == nullptr ||
       (api->dltensor_from_py_object_no_sync == nullptr &&
        api->managed_tensor_from_py_object_no_sync == nullptr))) {
    return nullptr;
  }
  return api;
}

}  // namespace

void raise_framework_failure(const char* call) {
  if (PyErr_Occurred()) {
    throw nb::python_error();
  }
  throw Error(std::string("DLPack exchange API: ") + call + " failed without setting an error");
}

const DLPackExchangeAPI* exchange_api_of(PyTypeObject* type) {
  // A handful of tensor types meet a process; a linear scan over a small table beats hashing.
  // Guarded by the GIL, like every other call into this module.
  struct Entry {
    PyTypeObject* type;
    const DLPackExchangeAPI* api;
  };
  static std::array<Entry, 16> cache{};
  static size_t used = 0;
  for (size_t i = 0; i < used; ++i) {
    if (cache[i].type == type) {
      return cache[i].api;
    }
  }
  const DLPackExchangeAPI* api = lookup_exchange_api(type);
  if (used < cache.size()) {
    Py_INCREF(type);
    cache[used++] = {type, api};
  }
  return api;
}

bool has_dlpack(PyObject* object) {
  int found = PyObject_HasAttrString(object, "__dlpack__");
  return found == 1;
}

Tensor ExchangeAllocator::allocate(DataType dtype, std::span<const int64_t> shape,
                                   Device device) const {
  // The allocator reads dtype, ndim, shape and device only; shape is not written through.
  dlpack::DLTensor prototype{};
  prototype.device = {device.type, device.id};
  prototype.ndim = static_cast<int32_t>(shape.size());
  prototype.dtype = dtype.to_dlpack();
  prototype.shape = const_cast<int64_t*>(shape.data());
  struct Failure {
    std::string kind;
    std::string message;
  } failure;
  dlpack::DLManagedTensorVersioned* out = nullptr;
  int status = api_->managed_tensor_allocator(&prototype, &out, &failure,
                                              [](void* ctx, const char* kind, const char* message) {
                                                auto* f = static_cast<Failure*>(ctx);
                                                f->kind = kind != nullptr ? kind : "";
                                                f->message = message != nullptr ? message : "";
                                              });
  if (status != 0 || out == nullptr) {
    if (PyErr_Occurred()) {
      throw nb::python_error();
    }
    throw Error("the framework's allocator failed to allocate an output of " + dtype.str() + ": " +
                failure.kind + ": " + failure.message);
  }
  return Tensor(out);
}

ProtocolTensor view_through_protocol(PyObject* object, void* stream, const char* param_name) {
  nb::handle obj(object);
  nb::tuple device = nb::cast<nb::tuple>(obj.attr("__dlpack_device__")());
  const int device_type = nb::cast<int>(device[0]);
  // The array API's stream argument: None for host memory; for CUDA the consumer's stream,
  // with 1 meaning the legacy default stream (0 is disallowed as ambiguous).
  nb::object stream_arg = nb::none();
  if (device_type == dlpack::kDLCUDA || device_type == dlpack::kDLCUDAManaged ||
      device_type == dlpack::kDLROCM) {
    stream_arg = nb::int_(stream == nullptr ? uintptr_t{1} : reinterpret_cast<uintptr_t>(stream));
  }
  nb::object capsule;
  try {
    capsule = obj.attr("__dlpack__")(nb::arg("stream") = stream_arg,
                                     nb::arg("max_version") = nb::make_tuple(1, 1));
  } catch (nb::python_error& e) {
    if (!e.matches(PyExc_TypeError)) {
      throw;
    }
    // A producer from before DLPack 1.0 knows no max_version.
    capsule = obj.attr("__dlpack__")(nb::arg("stream") = stream_arg);
  }
  ProtocolTensor view;
  if (PyCapsule_IsValid(capsule.ptr(), kVersionedName)) {
    auto* managed = static_cast<dlpack::DLManagedTensorVersioned*>(
        PyCapsule_GetPointer(capsule.ptr(), kVersionedName));
    if (managed->version.major != dlpack::kDLPackMajorVersion) {
      throw ArgumentError(std::string("parameter '") + param_name + "': DLPack major version " +
                          std::to_string(managed->version.major) + " is not supported");
    }
    view.tensor = &managed->dl_tensor;
    view.read_only = (managed->flags & dlpack::kDLPackFlagBitmaskReadOnly) != 0;
  } else if (PyCapsule_IsValid(capsule.ptr(), kLegacyName)) {
    view.tensor =
        &static_cast<DLManagedTensorLegacy*>(PyCapsule_GetPointer(capsule.ptr(), kLegacyName))
             ->dl_tensor;
  } else {
    throw ArgumentError(std::string("parameter '") + param_name +
                        "': __dlpack__() did not return a DLPack capsule");
  }
  view.capsule = capsule.release().ptr();
  return view;
}

namespace {

// An owned tilejit tensor that frameworks import with their from_dlpack(). It hands its memory
// over once: a second export is a BufferError, as the protocol asks.
class DLPackTensor {
 public:
  explicit DLPackTensor(Tensor tensor) : tensor_(std::move(tensor)) {}

  nb::tuple dlpack_device() const {
    if (!tensor_) {
      throw nb::buffer_error("tilejit.DLPackTensor: already exported");
    }
    return nb::make_tuple(tensor_.device().type, tensor_.device().id);
  }

  // stream is accepted and not waited on: the tensor was written on the launch stream, which
  // for frameworks without the exchange API is the stream they asked for or the legacy default
  // stream, and both are ordered before the consumer's work on the legacy default stream.
  nb::object dlpack(nb::handle /*stream*/, nb::handle max_version, nb::handle /*dl_device*/,
                    nb::handle copy) {
    if (!tensor_) {
      throw nb::buffer_error("tilejit.DLPackTensor: already exported");
    }
    if (!copy.is_none() && nb::cast<bool>(copy)) {
      throw nb::buffer_error("tilejit.DLPackTensor: copy=True is not supported");
    }
    const bool versioned =
        !max_version.is_none() && nb::cast<int>(nb::cast<nb::tuple>(max_version)[0]) >= 1;
    dlpack::DLManagedTensorVersioned* managed = tensor_.release();
    if (versioned) {
      PyObject* capsule = PyCapsule_New(managed, kVersionedName, [](PyObject* self) {
        if (PyCapsule_IsValid(self, kVersionedName)) {  // never consumed
          auto* m = static_cast<dlpack::DLManagedTensorVersioned*>(
              PyCapsule_GetPointer(self, kVersionedName));
          if (m->deleter != nullptr) m->deleter(m);
        }
      });
      if (capsule == nullptr) {
        managed->deleter(managed);
        throw nb::python_error();
      }
      return nb::steal(capsule);
    }
    // A pre-1.0 consumer: a legacy header that owns the versioned one.
    auto* legacy = new DLManagedTensorLegacy{
        managed->dl_tensor, managed, [](DLManagedTensorLegacy* self) {
          auto* m = static_cast<dlpack::DLManagedTensorVersioned*>(self->manager_ctx);
          if (m->deleter != nullptr) m->deleter(m);
          delete self;
        }};
    PyObject* capsule = PyCapsule_New(legacy, kLegacyName, [](PyObject* self) {
      if (PyCapsule_IsValid(self, kLegacyName)) {
        auto* l = static_cast<DLManagedTensorLegacy*>(PyCapsule_GetPointer(self, kLegacyName));
        l->deleter(l);
      }
    });
    if (capsule == nullptr) {
      legacy->deleter(legacy);
      throw nb::python_error();
    }
    return nb::steal(capsule);
  }

 private:
  Tensor tensor_;
};

// `numpy.from_dlpack` for numpy.ndarray, `cupy.from_dlpack` for cupy.ndarray, ...: the
// top-level module of the type, when it has from_dlpack.
nb::object from_dlpack_of(PyTypeObject* type) {
  if (type == nullptr) {
    return nb::none();
  }
  nb::object module_name = nb::handle(reinterpret_cast<PyObject*>(type)).attr("__module__");
  std::string top = nb::cast<std::string>(module_name);
  top = top.substr(0, top.find('.'));
  try {
    nb::module_ module = nb::module_::import_(top.c_str());
    if (nb::hasattr(module, "from_dlpack")) {
      return module.attr("from_dlpack");
    }
  } catch (nb::python_error&) {
  }
  return nb::none();
}

}  // namespace

PyObject* to_framework(Tensor tensor, PyTypeObject* like_type) {
  const bool on_host = tensor.device().type == dlpack::kDLCPU;
  nb::object from_dlpack = from_dlpack_of(like_type);
  if (from_dlpack.is_none() && on_host) {
    try {
      from_dlpack = nb::module_::import_("numpy").attr("from_dlpack");
    } catch (nb::python_error&) {
    }
  }
  nb::object exporter = nb::cast(DLPackTensor(std::move(tensor)));
  if (from_dlpack.is_none()) {
    return exporter.release().ptr();
  }
  return from_dlpack(exporter).release().ptr();
}

void bind_dlpack_tensor(nb::module_& m) {
  using namespace nb::literals;
  nb::class_<DLPackTensor>(m, "DLPackTensor",
                           "A kernel output owned by tilejit, for frameworks that import it with "
                           "their from_dlpack().")
      .def("__dlpack_device__", &DLPackTensor::dlpack_device)
      .def("__dlpack__", &DLPackTensor::dlpack, nb::kw_only(), "stream"_a = nb::none(),
           "max_version"_a = nb::none(), "dl_device"_a = nb::none(), "copy"_a = nb::none());
}

}  // namespace tilejit::python
