// tilejit._core.KernelBase: the callable half of tilejit.Kernel, written against the CPython
// API rather than nanobind so that a call is a vectorcall straight into C++: no argument
// tuple, no Python-level call per tensor (torch tensors go through the DLPack C exchange
// API), nothing created per call but the outputs. tilejit.Kernel (kernel.py) subclasses it
// and adds the Python-side conveniences; CompiledKernel (nanobind) carries the metadata.
#include <nanobind/nanobind.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>
#include <structmember.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bindings.h"
#include "call/binder.h"
#include "casters.h"
#include "compile/compile.h"
#include "compile/kernel_state.h"
#include "dlpack_exchange.h"
#include "exception_translation.h"
#include "struct_argument.h"
#include "tilejit/errors.h"
#include "tilejit/jit.h"
#include "tilejit/kernel.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace tilejit::python {
namespace {

using detail::kMaxParams;

// What a call needs, computed once when the kernel object is made.
struct CallPlan {
  Kernel kernel;
  std::string name;
  std::vector<std::string> input_names;  // the params a call passes, in order
  std::vector<uint8_t> input_special;    // 1 where that param is a `handle` (void*) or a struct
  std::vector<int> input_struct;         // index into structs where that param is a struct
  std::vector<StructPlan> structs;
  std::vector<uint32_t> struct_offsets;  // where each struct's bytes go in a call's buffer
  size_t num_outputs = 0;
  // The cpu backend runs the kernel on the calling thread: the GIL is released around it.
  bool runs_on_host = false;
};

struct KernelObject {
  PyObject_HEAD vectorcallfunc vectorcall;
  CallPlan* plan;
  PyObject* compiled;  // tilejit._core.CompiledKernel
};

PyTypeObject* kernel_base_type = nullptr;

// Fixed storage for a call's Args: Arg has no default constructor, and a vector would allocate.
// Args come by value (two registers) and are stored inline: through a reference, each was
// built in a temporary and copied with one 16-byte load from its narrower stores, a failed
// store-to-load forward that cost 14 % of a 19-argument call (docs/PERFORMANCE.md).
class ArgList {
 public:
  __attribute__((always_inline)) void push(Arg arg) {
    new (storage_ + size_++ * sizeof(Arg)) Arg(arg);
  }
  void replace(size_t i, Arg arg) { new (storage_ + i * sizeof(Arg)) Arg(arg); }
  std::span<const Arg> span() const {
    return {std::launder(reinterpret_cast<const Arg*>(storage_)), size_};
  }

 private:
  static_assert(std::is_trivially_copyable_v<Arg> && std::is_trivially_destructible_v<Arg>);
  alignas(Arg) unsigned char storage_[sizeof(Arg) * kMaxParams];
  size_t size_ = 0;
};

// Everything a call borrows, released when the call returns or throws.
class Borrowed {
 public:
  Borrowed() = default;
  Borrowed(const Borrowed&) = delete;
  Borrowed& operator=(const Borrowed&) = delete;
  ~Borrowed() {
    for (size_t i = 0; i < num_managed_; ++i) {
      if (managed_[i]->deleter != nullptr) managed_[i]->deleter(managed_[i]);
    }
    for (size_t i = 0; i < num_capsules_; ++i) Py_DECREF(capsules_[i]);
  }
  void keep(dlpack::DLManagedTensorVersioned* managed) { managed_[num_managed_++] = managed; }
  void keep(PyObject* capsule) { capsules_[num_capsules_++] = capsule; }

 private:
  std::array<dlpack::DLManagedTensorVersioned*, kMaxParams> managed_;
  std::array<PyObject*, kMaxParams> capsules_;
  size_t num_managed_ = 0;
  size_t num_capsules_ = 0;
};

std::string type_name_of(PyObject* object) {
  return Py_TYPE(object)->tp_name;
}

[[noreturn]] void bad_argument(const CallPlan& plan, size_t i, const std::string& what) {
  // The Binder's wording, so that every argument error reads alike.
  throw ArgumentError(plan.name + ": argument '" + plan.input_names[i] + "' (#" +
                      std::to_string(i) + "): " + what);
}

// Any int that int_argument does not read in place.
int64_t general_int_argument(const CallPlan& plan, size_t i, PyObject* value) {
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
  if (overflow != 0) {
    bad_argument(plan, i, "the integer does not fit in 64 bits");
  }
  if (v == -1 && PyErr_Occurred()) {
    throw nb::python_error();
  }
  return v;
}

// Inlined into the call: most arguments are small ints, stored in one digit, read in place.
// Others, and int subclasses, take the general conversion.
__attribute__((always_inline)) inline int64_t int_argument(const CallPlan& plan, size_t i,
                                                           PyObject* value) {
  if (Py_IS_TYPE(value, &PyLong_Type)) {
#if PY_VERSION_HEX >= 0x030C0000
    auto* number = reinterpret_cast<PyLongObject*>(value);
    if (PyUnstable_Long_IsCompact(number)) {
      return static_cast<int64_t>(PyUnstable_Long_CompactValue(number));
    }
#else
    // Before 3.12 there is no such API; there a PyLongObject (longintrepr.h) is a signed digit
    // count and the digits, and the count is -1, 0 or 1 for one digit.
    const Py_ssize_t digits = Py_SIZE(value);
    if (digits >= -1 && digits <= 1) {
      return digits * static_cast<int64_t>(reinterpret_cast<PyLongObject*>(value)->ob_digit[0]);
    }
#endif
  }
  return general_int_argument(plan, i, value);
}

// A `handle` (void*) argument: an int address (0 is null), a ctypes.c_void_p, or an object
// with data_ptr() (a torch tensor). None is refused: it is far more often a missing buffer than
// a null pointer meant.
void* handle_argument(const CallPlan& plan, size_t i, PyObject* value) {
  static PyObject* c_void_p = [] {
    nb::object type = nb::module_::import_("ctypes").attr("c_void_p");
    return type.release().ptr();  // kept for the life of the process
  }();
  nb::object address;
  if (value == Py_None) {
    bad_argument(plan, i, "expected a pointer (handle), got None; pass 0 for a null pointer");
  } else if (PyBool_Check(value)) {
    bad_argument(plan, i, "expected a pointer (handle), got a bool");
  } else if (PyLong_Check(value)) {
    address = nb::borrow(value);
  } else if (int is = PyObject_IsInstance(value, c_void_p); is != 0) {
    if (is < 0) throw nb::python_error();
    address = nb::steal(PyObject_GetAttrString(value, "value"));
    if (address.is_valid() && address.is_none()) return nullptr;  // c_void_p(): null
  } else if (nb::hasattr(value, "data_ptr")) {
    // Before __index__: a one-element torch tensor has both, and means its data.
    address = nb::handle(value).attr("data_ptr")();
    if (!PyLong_Check(address.ptr())) {
      bad_argument(plan, i, "data_ptr() of a " + type_name_of(value) + " did not return an int");
    }
  } else if (PyIndex_Check(value)) {  // numpy integers
    address = nb::steal(PyNumber_Index(value));
  } else {
    bad_argument(plan, i,
                 "expected a pointer (handle): an int address, a ctypes.c_void_p or an object "
                 "with data_ptr(), got " +
                     type_name_of(value));
  }
  if (!address.is_valid()) throw nb::python_error();
  if (PyObject_RichCompareBool(address.ptr(), nb::int_(0).ptr(), Py_LT) == 1) {
    bad_argument(plan, i, "a pointer (handle) cannot be negative");
  }
  void* pointer = PyLong_AsVoidPtr(address.ptr());
  if (pointer == nullptr && PyErr_Occurred()) {
    PyErr_Clear();
    bad_argument(plan, i, "the address does not fit in a pointer");
  }
  return pointer;
}

// An explicit stream= : a raw handle (int), a torch/cupy stream object (.cuda_stream), or
// anything with the CUDA stream protocol (__cuda_stream__() -> (version, handle)).
void* explicit_stream(PyObject* value) {
  nb::handle v(value);
  if (PyLong_Check(value)) {
    return reinterpret_cast<void*>(nb::cast<uintptr_t>(v));
  }
  if (nb::hasattr(v, "__cuda_stream__")) {
    nb::tuple protocol = nb::cast<nb::tuple>(v.attr("__cuda_stream__")());
    return reinterpret_cast<void*>(nb::cast<uintptr_t>(protocol[1]));
  }
  if (nb::hasattr(v, "cuda_stream")) {
    return reinterpret_cast<void*>(nb::cast<uintptr_t>(v.attr("cuda_stream")));
  }
  throw ArgumentError(
      "stream=: expected an int handle or a stream object (torch.cuda.Stream, "
      "anything with __cuda_stream__), got " +
      type_name_of(value));
}

// torch, when the process has imported it (never imports it), for calls with no tensor
// argument: its exchange API and, for CUDA kernels, its current device.
struct TorchDefault {
  const DLPackExchangeAPI* api = nullptr;
  int32_t cuda_device = 0;
};
TorchDefault torch_default(bool cuda) {
  TorchDefault result;
  nb::object torch = nb::steal(PyImport_GetModule(nb::str("torch").ptr()));
  if (!torch.is_valid()) {
    PyErr_Clear();
    return result;
  }
  nb::object tensor_type = nb::getattr(torch, "Tensor", nb::none());
  if (!PyType_Check(tensor_type.ptr())) return result;
  result.api = exchange_api_of(reinterpret_cast<PyTypeObject*>(tensor_type.ptr()));
  // Without a usable CUDA torch, device 0 stays, and tilejit's own launch reports what is missing.
  if (result.api != nullptr && cuda && nb::cast<bool>(torch.attr("cuda").attr("is_available")())) {
    result.cuda_device = nb::cast<int32_t>(torch.attr("cuda").attr("current_device")());
  }
  return result;
}

bool is_cuda(const dlpack::DLDevice& device) {
  return device.device_type == dlpack::kDLCUDA || device.device_type == dlpack::kDLCUDAManaged;
}

PyObject* call_kernel(const CallPlan& plan, PyObject* const* args, size_t nargs,
                      PyObject* kwnames) {
  PyObject* stream_value = nullptr;
  if (kwnames != nullptr) {
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); ++k) {
      PyObject* key = PyTuple_GET_ITEM(kwnames, k);
      if (PyUnicode_CompareWithASCIIString(key, "stream") != 0) {
        throw ArgumentError(plan.name + ": unexpected keyword argument '" +
                            nb::cast<std::string>(nb::handle(key)) +
                            "' (arguments are positional; the only keyword is stream=)");
      }
      stream_value = args[nargs + static_cast<size_t>(k)];
    }
  }
  if (nargs != plan.input_names.size()) {
    std::string expected;
    for (const std::string& name : plan.input_names)
      expected += (expected.empty() ? "" : ", ") + name;
    throw ArgumentError(plan.name + ": expected " + std::to_string(plan.input_names.size()) +
                        " arguments (" + expected + "), got " + std::to_string(nargs));
  }

  ArgList list;
  Borrowed borrowed;
  std::array<dlpack::DLTensor, kMaxParams> views;
  // Bit i: argument i is converted through the protocol once the stream is known. A mask, not
  // an array: zeroing a small array per call compiled to a slow `rep stos`.
  static_assert(kMaxParams <= 64);
  uint64_t through_protocol = 0;
  const DLPackExchangeAPI* framework = nullptr;  // the first tensor's, when it has one
  PyTypeObject* framework_type = nullptr;
  const dlpack::DLDevice* stream_device = nullptr;

  // Struct params' packed bytes; the Binder copies them into the BoundCall.
  alignas(16) unsigned char struct_bytes[kMaxStructBytes];

  for (size_t i = 0; i < nargs; ++i) {
    PyObject* value = args[i];
    PyTypeObject* type = Py_TYPE(value);
    if (plan.input_special[i] != 0) [[unlikely]] {
      if (plan.input_struct[i] < 0) {
        list.push(Arg::pointer(handle_argument(plan, i, value)));
      } else {
        const size_t s = static_cast<size_t>(plan.input_struct[i]);
        unsigned char* at = struct_bytes + plan.struct_offsets[s];
        pack_struct(plan.structs[s], value, at, {plan.name, plan.input_names[i], i});
        list.push(Arg::bytes(at, plan.structs[s].layout.size));
      }
    } else if (type == &PyLong_Type) {
      list.push(Arg(static_cast<long long>(int_argument(plan, i, value))));
    } else if (type == &PyFloat_Type) {
      list.push(Arg(PyFloat_AS_DOUBLE(value)));
    } else if (type == &PyBool_Type) {
      list.push(Arg(value == Py_True));
    } else if (const DLPackExchangeAPI* api = type == framework_type && framework != nullptr
                                                  ? framework
                                                  : exchange_api_of(type)) {
      if (api->dltensor_from_py_object_no_sync != nullptr) {
        if (api->dltensor_from_py_object_no_sync(value, &views[i]) != 0) {
          raise_framework_failure("dltensor_from_py_object_no_sync");
        }
        list.push(Arg(&views[i]));
      } else {
        dlpack::DLManagedTensorVersioned* managed = nullptr;
        if (api->managed_tensor_from_py_object_no_sync(value, &managed) != 0) {
          raise_framework_failure("managed_tensor_from_py_object_no_sync");
        }
        borrowed.keep(managed);
        views[i] = managed->dl_tensor;
        const bool read_only = (managed->flags & dlpack::kDLPackFlagBitmaskReadOnly) != 0;
        list.push(read_only ? Arg::read_only(&views[i]) : Arg(&views[i]));
      }
      if (framework == nullptr) {
        framework = api;
        framework_type = type;
      }
      if (stream_device == nullptr && is_cuda(views[i].device)) {
        stream_device = &views[i].device;
      }
    } else if (has_dlpack(value)) {
      through_protocol |= uint64_t{1} << i;
      list.push(Arg(&views[i]));  // filled in below; the Arg holds the address only
      if (framework_type == nullptr) framework_type = type;
    } else if (PyIndex_Check(value)) {  // numpy integers
      nb::object index = nb::steal(PyNumber_Index(value));
      if (!index.is_valid()) throw nb::python_error();
      list.push(Arg(static_cast<long long>(int_argument(plan, i, index.ptr()))));
    } else if (PyFloat_Check(value) || (type->tp_as_number != nullptr &&
                                        type->tp_as_number->nb_float != nullptr)) {  // numpy floats
      double v = PyFloat_AsDouble(value);
      if (v == -1.0 && PyErr_Occurred()) throw nb::python_error();
      list.push(Arg(v));
    } else {
      bad_argument(
          plan, i,
          "expected a tensor (an object with __dlpack__) or a number, got " + type_name_of(value));
    }
  }

  // No tensor argument says which framework the outputs belong to: torch's, when the process
  // has imported torch (docs/torch.md), on torch's current device.
  dlpack::DLDevice no_tensor_device{plan.runs_on_host ? dlpack::kDLCPU : dlpack::kDLCUDA, 0};
  if (framework_type == nullptr && plan.num_outputs > 0) {
    const TorchDefault torch = torch_default(!plan.runs_on_host);
    framework = torch.api;
    no_tensor_device.device_id = torch.cuda_device;
    if (framework != nullptr && !plan.runs_on_host) stream_device = &no_tensor_device;
  }

  // The stream is read just in time, every call, as the framework's current stream for the
  // tensors' device: a `with torch.cuda.stream(s):` block is honoured.
  void* stream = nullptr;
  if (stream_value != nullptr && stream_value != Py_None) {
    stream = explicit_stream(stream_value);
  } else if (stream_device != nullptr) {
    if (framework->current_work_stream(stream_device->device_type, stream_device->device_id,
                                       &stream) != 0) {
      raise_framework_failure("current_work_stream");
    }
  }

  if (through_protocol != 0) {
    for (size_t i = 0; i < nargs; ++i) {
      if ((through_protocol >> i & 1) == 0) continue;
      ProtocolTensor view = view_through_protocol(args[i], stream, plan.input_names[i].c_str());
      borrowed.keep(view.capsule);
      views[i] = *view.tensor;
      if (view.read_only) list.replace(i, Arg::read_only(&views[i]));
    }
  }

  // Initialized by the call itself: a default-constructed vector assigned afterwards cost a
  // `rep stos` and a move per call.
  std::vector<Tensor> outputs = [&] {
    if (plan.num_outputs > 0 && framework != nullptr) {
      const ExchangeAllocator allocator(framework, no_tensor_device.device_id);
      return plan.kernel(list.span(), StreamRef(stream), &allocator);
    }
    if (plan.runs_on_host) {
      // Only tilejit's own allocator runs inside: no Python is touched without the GIL.
      nb::gil_scoped_release release;
      return plan.kernel(list.span(), StreamRef(stream), nullptr);
    }
    return plan.kernel(list.span(), StreamRef(stream), nullptr);
  }();

  if (outputs.empty()) {
    Py_RETURN_NONE;
  }
  nb::list results;
  for (Tensor& output : outputs) {
    nb::object result;
    if (framework != nullptr) {
      void* object = nullptr;
      // The framework takes ownership of the managed tensor, whatever the outcome.
      if (framework->managed_tensor_to_py_object_no_sync(output.release(), &object) != 0) {
        raise_framework_failure("managed_tensor_to_py_object_no_sync");
      }
      result = nb::steal(static_cast<PyObject*>(object));
    } else {
      result = nb::steal(to_framework(std::move(output), framework_type));
    }
    if (outputs.size() == 1) {
      return result.release().ptr();
    }
    results.append(result);
  }
  return results.release().ptr();
}

PyObject* kernel_vectorcall(PyObject* callable, PyObject* const* args, size_t nargsf,
                            PyObject* kwnames) {
  auto* self = reinterpret_cast<KernelObject*>(callable);
  try {
    return call_kernel(*self->plan, args, static_cast<size_t>(PyVectorcall_NARGS(nargsf)), kwnames);
  } catch (...) {
    set_error_from_current_exception();
    return nullptr;
  }
}

void kernel_dealloc(PyObject* object) {
  auto* self = reinterpret_cast<KernelObject*>(object);
  PyTypeObject* type = Py_TYPE(object);
  delete self->plan;
  Py_XDECREF(self->compiled);
  type->tp_free(object);
  Py_DECREF(type);  // instances of heap types own a reference to their type
}

PyObject* kernel_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyErr_Format(PyExc_TypeError, "%s objects are made by tilejit.compile(), not directly",
               type->tp_name);
  return nullptr;
}

PyMemberDef kernel_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(KernelObject, vectorcall), READONLY, nullptr},
    {"_compiled", T_OBJECT, offsetof(KernelObject, compiled), READONLY,
     "The compiled kernel's metadata and sources (tilejit._core.CompiledKernel)."},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot kernel_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(kernel_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(kernel_dealloc)},
    {Py_tp_call, reinterpret_cast<void*>(PyVectorcall_Call)},
    {Py_tp_members, kernel_members},
    {Py_tp_doc,
     const_cast<char*>("The callable core of tilejit.Kernel: kernel(*args, stream=None) checks the "
                       "arguments, launches and returns the out_idx outputs.")},
    {0, nullptr},
};

PyType_Spec kernel_spec = {
    "tilejit._core.KernelBase",
    sizeof(KernelObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_VECTORCALL,
    kernel_slots,
};

// A new instance of `cls` (KernelBase or a subclass: tilejit.Kernel) around `kernel`.
nb::object make_kernel_object(nb::handle cls, Kernel kernel) {
  if (!PyType_Check(cls.ptr()) ||
      !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(cls.ptr()), kernel_base_type)) {
    throw nb::type_error("cls must be a subclass of tilejit._core.KernelBase");
  }
  auto plan = std::make_unique<CallPlan>();
  const Program& program = kernel.program();
  plan->name = program.name;
  const std::vector<int>& out_idx = kernel.out_idx();
  for (size_t i = 0; i < program.params.size(); ++i) {
    bool is_output = false;
    for (int o : out_idx) is_output |= static_cast<size_t>(o) == i;
    if (is_output) continue;
    plan->input_names.push_back(program.params[i].name);
    plan->input_special.push_back(
        program.params[i].is_struct() ||
                (program.params[i].is_scalar() && program.params[i].dtype.is_handle())
            ? 1
            : 0);
    plan->input_struct.push_back(-1);
    if (program.params[i].is_struct()) {
      // Laid out as the Binder lays out its copies; the Binder refused more than fits.
      StructPlan& s = plan->structs.emplace_back(program.params[i]);
      const uint32_t end = plan->struct_offsets.empty()
                               ? 0
                               : plan->struct_offsets.back() + plan->structs.end()[-2].layout.size;
      plan->struct_offsets.push_back((end + s.layout.alignment - 1) / s.layout.alignment *
                                     s.layout.alignment);
      plan->input_struct.back() = static_cast<int>(plan->structs.size() - 1);
    }
  }
  if (plan->input_names.size() > static_cast<size_t>(kMaxParams)) {
    throw ProgramError("program '" + program.name + "' has more than " +
                       std::to_string(kMaxParams) + " parameters");
  }
  plan->num_outputs = out_idx.size();
  plan->runs_on_host = detail::kernel_state(kernel).backend->device_type() == dlpack::kDLCPU;
  plan->kernel = kernel;
  nb::object compiled = nb::cast(std::move(kernel));

  auto* type = reinterpret_cast<PyTypeObject*>(cls.ptr());
  inherit_vectorcall(type, kernel_base_type);
  PyObject* object = type->tp_alloc(type, 0);
  if (object == nullptr) throw nb::python_error();
  auto* self = reinterpret_cast<KernelObject*>(object);
  self->vectorcall = kernel_vectorcall;
  self->plan = plan.release();
  self->compiled = compiled.release().ptr();
  return nb::steal(object);
}

CompileOptions make_options(std::optional<std::vector<int>> out_idx, std::string execution_backend,
                            std::string target, std::string target_host, std::string host_compiler,
                            std::optional<bool> verbose,
                            std::map<std::string, std::string> pass_configs,
                            std::vector<std::string> compile_flags, std::string remote_cache) {
  CompileOptions options;
  options.out_idx = std::move(out_idx);
  options.execution_backend = std::move(execution_backend);
  options.target = std::move(target);
  options.target_host = std::move(target_host);
  options.host_compiler = std::move(host_compiler);
  options.verbose = verbose;
  options.pass_configs = std::move(pass_configs);
  options.compile_flags = std::move(compile_flags);
  options.remote_cache = std::move(remote_cache);
  return options;
}

}  // namespace

void bind_kernel(nb::module_& m) {
  kernel_base_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&kernel_spec));
  if (kernel_base_type == nullptr) throw nb::python_error();
  m.attr("KernelBase") = nb::handle(reinterpret_cast<PyObject*>(kernel_base_type));

  nb::class_<GlobalSymbol>(m, "GlobalSymbol",
                           "A module global of a loaded kernel (Kernel.get_global): its address "
                           "(a device address for CUDA backends, a host address for cpu) and "
                           "size in bytes.")
      .def_prop_ro("ptr", [](const GlobalSymbol& g) { return reinterpret_cast<uintptr_t>(g.ptr); })
      .def_ro("nbytes", &GlobalSymbol::bytes)
      .def_prop_ro("device_id", [](const GlobalSymbol& g) { return g.device.id; })
      .def("__repr__", [](const GlobalSymbol& g) {
        return fmt::format("<tilejit.GlobalSymbol ptr=0x{:x} nbytes={}>",
                           reinterpret_cast<uintptr_t>(g.ptr), g.bytes);
      });

  nb::class_<Kernel>(m, "CompiledKernel",
                     "A loaded kernel's metadata and sources; tilejit.Kernel wraps it.")
      .def_prop_ro("params", &Kernel::params)
      .def_prop_ro("out_idx", &Kernel::out_idx)
      .def_prop_ro("program", &Kernel::program)
      .def_prop_ro("cache_key", &Kernel::cache_key)
      .def_prop_ro("backend", [](const Kernel& k) { return k.artifact().backend; })
      .def_prop_ro("target", [](const Kernel& k) { return k.artifact().target; })
      .def_prop_ro("binary_kind", [](const Kernel& k) { return k.artifact().binary_kind; })
      .def_prop_ro("binary",
                   [](const Kernel& k) {
                     const std::string& b = k.artifact().binary;
                     return nb::bytes(b.data(), b.size());
                   })
      .def_prop_ro("metadata", [](const Kernel& k) { return k.artifact().metadata; })
      .def("get_kernel_source", &Kernel::get_kernel_source, "kernel_only"_a = false)
      .def("get_host_source", &Kernel::get_host_source)
      .def("get_device_source", &Kernel::get_device_source)
      .def(
          "get_global",
          [](const Kernel& k, const std::string& name, int device) {
            return k.get_global(name, device);
          },
          "name"_a, "device"_a = 0)
      .def("export", &Kernel::export_to, "path"_a, nb::call_guard<nb::gil_scoped_release>())
      .def(
          "save", [](const Kernel& k, const std::filesystem::path& dir) { k.artifact().save(dir); },
          "path"_a, nb::call_guard<nb::gil_scoped_release>());

  m.def(
      "compile",
      [](nb::handle cls, const Program& program, std::optional<std::vector<int>> out_idx,
         std::string execution_backend, std::string target, std::string target_host,
         std::string host_compiler, std::optional<bool> verbose,
         std::map<std::string, std::string> pass_configs, std::vector<std::string> compile_flags,
         std::string remote_cache, bool worker_process) {
        CompileOptions options = make_options(
            std::move(out_idx), std::move(execution_backend), std::move(target),
            std::move(target_host), std::move(host_compiler), verbose, std::move(pass_configs),
            std::move(compile_flags), std::move(remote_cache));
        Kernel kernel;
        {
          // Compiling takes milliseconds to seconds: other Python threads run meanwhile, which
          // is what par_compile's worker threads rely on.
          nb::gil_scoped_release release;
          kernel = detail::compile_with_outcome(program, options,
                                                worker_process
                                                    ? detail::CompilerPlacement::kWorkerProcess
                                                    : detail::CompilerPlacement::kInProcess)
                       .kernel;
        }
        return make_kernel_object(cls, std::move(kernel));
      },
      "cls"_a, "program"_a, "out_idx"_a = nb::none(), "execution_backend"_a = "", "target"_a = "",
      "target_host"_a = "", "host_compiler"_a = "", "verbose"_a = nb::none(),
      "pass_configs"_a = std::map<std::string, std::string>{},
      "compile_flags"_a = std::vector<std::string>{}, "remote_cache"_a = "",
      "_worker_process"_a = false,
      "Compiles `program` (memory cache, disk cache, then the backend) into an instance of `cls`. "
      "`_worker_process` (par_compile's) runs an in-process compiler (NVRTC) in a worker process "
      "instead, so that compiles on several threads overlap.");

  m.def(
      "cache_key",
      [](const Program& program, std::optional<std::vector<int>> out_idx,
         std::string execution_backend, std::string target, std::string target_host,
         std::string host_compiler, std::optional<bool> verbose,
         std::map<std::string, std::string> pass_configs, std::vector<std::string> compile_flags) {
        CompileOptions options =
            make_options(std::move(out_idx), std::move(execution_backend), std::move(target),
                         std::move(target_host), std::move(host_compiler), verbose,
                         std::move(pass_configs), std::move(compile_flags),
                         /*remote_cache=*/"");  // the remote tier never changes a key
        nb::gil_scoped_release release;         // may compile once (user include directories)
        return tilejit::cache_key(program, options);
      },
      "program"_a, "out_idx"_a = nb::none(), "execution_backend"_a = "", "target"_a = "",
      "target_host"_a = "", "host_compiler"_a = "", "verbose"_a = nb::none(),
      "pass_configs"_a = std::map<std::string, std::string>{},
      "compile_flags"_a = std::vector<std::string>{},
      "The key compile() files `program` under (tilejit::cache_key: SHA-256 hex).");

  m.def(
      "load_kernel",
      [](nb::handle cls, const std::filesystem::path& dir) {
        Kernel kernel;
        {
          nb::gil_scoped_release release;
          kernel = Kernel::load(dir);
        }
        return make_kernel_object(cls, std::move(kernel));
      },
      "cls"_a, "path"_a,
      "Kernel::load: an instance of `cls` from a saved artifact or cache entry directory.");

  m.def("par_compile_workers", &detail::par_compile_workers, "count"_a, "num_workers"_a,
        "par_compile's worker count: num_workers when > 0, else the CPUs this process may run "
        "on; never more than count.");
}

}  // namespace tilejit::python
