#include "exception_translation.h"

#include <exception>
#include <new>

#include "tilejit/errors.h"

namespace nb = nanobind;

namespace tilejit::python {
namespace {

struct ErrorTypes {
  PyObject* error = nullptr;
  PyObject* program_error = nullptr;
  PyObject* argument_error = nullptr;
  PyObject* compile_error = nullptr;
  PyObject* cuda_error = nullptr;
  PyObject* not_available_error = nullptr;
};
// Created once at import and never freed: the module keeps them alive for the process.
ErrorTypes types;

PyObject* new_error_type(nb::module_& m, const char* name, const char* doc, PyObject* bases) {
  // Qualified as tilejit.X: that is where users import them from and how tracebacks show them.
  std::string qualified = std::string("tilejit.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (type == nullptr) {
    throw nb::python_error();
  }
  m.attr(name) = nb::handle(type);
  return type;
}

PyObject* bases_of(PyObject* first, PyObject* second = nullptr) {
  return second == nullptr ? PyTuple_Pack(1, first) : PyTuple_Pack(2, first, second);
}

void raise_compile_error(const CompileError& e) {
  nb::object value = nb::steal(PyObject_CallOneArg(types.compile_error, nb::str(e.what()).ptr()));
  if (!value.is_valid()) {
    return;  // the constructor's own error is set
  }
  nb::list options;
  for (const std::string& option : e.options()) {
    options.append(nb::str(option.c_str(), option.size()));
  }
  value.attr("log") = nb::str(e.log().c_str(), e.log().size());
  value.attr("options") = options;
  value.attr("source_name") = nb::str(e.source_name().c_str(), e.source_name().size());
  PyErr_SetObject(types.compile_error, value.ptr());
}

void raise_cuda_error(const CudaError& e) {
  nb::object value = nb::steal(PyObject_CallOneArg(types.cuda_error, nb::str(e.what()).ptr()));
  if (!value.is_valid()) {
    return;
  }
  value.attr("code") = e.code();
  PyErr_SetObject(types.cuda_error, value.ptr());
}

PyObject* builtin_type(nb::exception_type type) {
  switch (type) {
    case nb::exception_type::type_error:
      return PyExc_TypeError;
    case nb::exception_type::value_error:
      return PyExc_ValueError;
    case nb::exception_type::buffer_error:
      return PyExc_BufferError;
    case nb::exception_type::index_error:
      return PyExc_IndexError;
    case nb::exception_type::key_error:
      return PyExc_KeyError;
    case nb::exception_type::attribute_error:
      return PyExc_AttributeError;
    case nb::exception_type::import_error:
      return PyExc_ImportError;
    case nb::exception_type::stop_iteration:
      return PyExc_StopIteration;
    default:
      return PyExc_RuntimeError;
  }
}

// Most derived first: a catch clause matches base classes too.
void set_error(const std::exception_ptr& error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (nb::python_error& e) {
    e.restore();
  } catch (const CompileError& e) {
    raise_compile_error(e);
  } catch (const CudaError& e) {
    raise_cuda_error(e);
  } catch (const ProgramError& e) {
    PyErr_SetString(types.program_error, e.what());
  } catch (const ArgumentError& e) {
    PyErr_SetString(types.argument_error, e.what());
  } catch (const NotAvailableError& e) {
    PyErr_SetString(types.not_available_error, e.what());
  } catch (const Error& e) {
    PyErr_SetString(types.error, e.what());
  } catch (const nb::builtin_exception& e) {
    // nanobind's own (nb::type_error, nb::buffer_error ...), raised inside tilejit's code.
    PyErr_SetString(builtin_type(e.type()), e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "tilejit: unknown C++ exception");
  }
}

}  // namespace

void set_error_from_current_exception() noexcept {
  set_error(std::current_exception());
}

PyObject* argument_error_type() {
  return types.argument_error;
}

void bind_errors(nb::module_& m) {
  nb::object runtime_bases = nb::steal(bases_of(PyExc_RuntimeError));
  types.error =
      new_error_type(m, "Error", "Base of every exception tilejit raises.", runtime_bases.ptr());
  nb::object error_bases = nb::steal(bases_of(types.error));
  types.program_error = new_error_type(
      m, "ProgramError",
      "The Program is malformed: bad JSON, an unparsable expression, an unknown variable or "
      "kernel name.",
      error_bases.ptr());
  // Also a ValueError, so code that guards calls with `except ValueError` keeps working.
  nb::object argument_bases = nb::steal(bases_of(types.error, PyExc_ValueError));
  types.argument_error = new_error_type(
      m, "ArgumentError",
      "A call's arguments do not fit the kernel's parameters; the message names the parameter, "
      "what was expected and what came.",
      argument_bases.ptr());
  types.compile_error = new_error_type(
      m, "CompileError",
      "A compiler rejected the source. Attributes: log (the complete compiler output), options "
      "(the compiler options), source_name.",
      error_bases.ptr());
  types.cuda_error = new_error_type(
      m, "CudaError",
      "A CUDA driver or NVRTC call failed. Attribute: code (the raw CUresult / nvrtcResult).",
      error_bases.ptr());
  types.not_available_error = new_error_type(
      m, "NotAvailableError",
      "The feature needs something this machine lacks: a CUDA driver, a device, a compiler.",
      error_bases.ptr());

  nb::register_exception_translator(
      [](const std::exception_ptr& error, void*) { set_error(error); });
}

}  // namespace tilejit::python
