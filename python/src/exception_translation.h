// tilejit's exception family in Python: tilejit.Error and its subclasses, mirroring
// include/tilejit/errors.h, and the translation of a C++ exception into a Python one.
#pragma once

#include <nanobind/nanobind.h>

namespace tilejit::python {

// Creates the exception types and registers them on `m` and with nanobind's translator.
void bind_errors(nanobind::module_& m);

// Sets the Python error indicator from the exception in flight (call from a catch block).
// For code outside nanobind's dispatch, such as the kernel's vectorcall entry.
void set_error_from_current_exception() noexcept;

// The Python type of tilejit.ArgumentError, for errors raised by the argument conversion.
PyObject* argument_error_type();

}  // namespace tilejit::python
