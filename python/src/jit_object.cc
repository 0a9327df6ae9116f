// tilejit._core.JitBase: the memo hit of @tilejit.jit, written against the CPython API. A call
// whose positional arguments key a kernel already compiled (lazy mode) returns it after one
// tuple and one dict lookup in C, with no Python frame: CPython's call of a Python-level
// __call__ with *args was most of what a memo hit cost over calling the kernel directly
// (docs/PERFORMANCE.md). Every other call (keyword arguments, eager mode, a first call,
// unhashable arguments) goes to the subclass's `_call_slow(*args, **kwargs)`:
// tilejit.JITImpl (jit.py) subclasses JitBase and keeps the memo in its `_kernels` dict.
#include <nanobind/nanobind.h>
#include <structmember.h>

#include <cstddef>
#include <vector>

#include "bindings.h"

namespace nb = nanobind;

namespace tilejit::python {
namespace {

struct JitObject {
  PyObject_HEAD vectorcallfunc vectorcall;
  PyObject* kernels;  // dict: positional-argument tuple -> tilejit.Kernel
};

PyTypeObject* jit_base_type = nullptr;
PyObject* call_slow_name = nullptr;  // interned "_call_slow"

// self._call_slow(*args, **kwargs), with the arguments as they came.
PyObject* call_slow(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  const Py_ssize_t total = nargs + (kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0);
  PyObject* small[16];
  std::vector<PyObject*> large;
  PyObject** with_self = small;
  if (total + 1 > static_cast<Py_ssize_t>(std::size(small))) {
    large.resize(static_cast<size_t>(total + 1));
    with_self = large.data();
  }
  with_self[0] = self;
  for (Py_ssize_t i = 0; i < total; ++i) with_self[i + 1] = args[i];
  return PyObject_VectorcallMethod(call_slow_name, with_self, static_cast<size_t>(nargs + 1),
                                   kwnames);
}

PyObject* jit_vectorcall(PyObject* callable, PyObject* const* args, size_t nargsf,
                         PyObject* kwnames) {
  auto* self = reinterpret_cast<JitObject*>(callable);
  const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  if (kwnames == nullptr || PyTuple_GET_SIZE(kwnames) == 0) {
    PyObject* key = PyTuple_New(nargs);
    if (key == nullptr) return nullptr;
    for (Py_ssize_t i = 0; i < nargs; ++i) {
      Py_INCREF(args[i]);
      PyTuple_SET_ITEM(key, i, args[i]);
    }
    PyObject* kernel = PyDict_GetItemWithError(self->kernels, key);  // borrowed
    Py_DECREF(key);
    if (kernel != nullptr) {
      Py_INCREF(kernel);
      return kernel;
    }
    if (PyErr_Occurred()) {
      // Unhashable arguments (tensors of a framework without __hash__, lists) are not a memo
      // key; _call_slow decides what they mean. Any other error is the caller's.
      if (!PyErr_ExceptionMatches(PyExc_TypeError)) return nullptr;
      PyErr_Clear();
    }
  }
  return call_slow(callable, args, nargs, kwnames);
}

PyObject* jit_new(PyTypeObject* type, PyObject*, PyObject*) {
  inherit_vectorcall(type, jit_base_type);
  PyObject* object = type->tp_alloc(type, 0);
  if (object == nullptr) return nullptr;
  auto* self = reinterpret_cast<JitObject*>(object);
  self->vectorcall = jit_vectorcall;
  self->kernels = PyDict_New();
  if (self->kernels == nullptr) {
    Py_DECREF(object);
    return nullptr;
  }
  return object;
}

int jit_traverse(PyObject* object, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(object));  // a heap type's instances own a reference to it
  Py_VISIT(reinterpret_cast<JitObject*>(object)->kernels);
  return 0;
}

int jit_clear(PyObject* object) {
  Py_CLEAR(reinterpret_cast<JitObject*>(object)->kernels);
  return 0;
}

void jit_dealloc(PyObject* object) {
  PyTypeObject* type = Py_TYPE(object);
  PyObject_GC_UnTrack(object);
  jit_clear(object);
  type->tp_free(object);
  Py_DECREF(type);
}

PyMemberDef jit_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(JitObject, vectorcall), READONLY, nullptr},
    {"_kernels", T_OBJECT, offsetof(JitObject, kernels), READONLY,
     "The lazy-mode memo: positional-argument tuple (or with keywords, (args, frozenset of "
     "the keyword items)) -> tilejit.Kernel."},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot jit_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(jit_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(jit_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(jit_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(jit_clear)},
    {Py_tp_call, reinterpret_cast<void*>(PyVectorcall_Call)},
    {Py_tp_members, jit_members},
    {Py_tp_doc,
     const_cast<char*>("The memo-hit core of tilejit.JITImpl: a call whose positional arguments "
                       "key a compiled kernel returns it; any other call goes to _call_slow.")},
    {0, nullptr},
};

PyType_Spec jit_spec = {
    "tilejit._core.JitBase",
    sizeof(JitObject),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    jit_slots,
};

}  // namespace

void bind_jit(nb::module_& m) {
  call_slow_name = PyUnicode_InternFromString("_call_slow");
  if (call_slow_name == nullptr) throw nb::python_error();
  jit_base_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&jit_spec));
  if (jit_base_type == nullptr) throw nb::python_error();
  m.attr("JitBase") = nb::handle(reinterpret_cast<PyObject*>(jit_base_type));
}

}  // namespace tilejit::python
