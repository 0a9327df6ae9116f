// A struct scalar's value from Python, packed into the bytes its fields lay out (C ABI), for
// Arg::bytes: a tuple or list in field order, a dict by field name, a ctypes.Structure with the
// same fields, or a complex for a struct of two float32 (or two float64) fields.
//
//   StructPlan plan(param);                                  // when the kernel object is made
//   pack_struct(plan, value, buffer, {program, "p", 2});     // per call; buffer: plan.layout.size
#pragma once

#include <Python.h>

#include <string_view>

#include "tilejit/program.h"

namespace tilejit::python {

struct StructPlan {
  explicit StructPlan(const KernelParam& param);

  std::vector<StructField> fields;
  StructLayout layout;
  bool takes_complex = false;  // two fields of one float dtype: (re, im)
};

// Who the value is for, named in error messages as the Binder names arguments.
struct ArgumentName {
  std::string_view program;
  std::string_view param;
  size_t index;
};

// Writes layout.size bytes to `out` (padding zeroed). Throws ArgumentError naming the argument
// and the field for a value of the wrong shape or type, a missing or unknown field, or a number
// out of the field's range.
void pack_struct(const StructPlan& plan, PyObject* value, unsigned char* out,
                 const ArgumentName& name);

}  // namespace tilejit::python
