// The pieces of the tilejit._core module and the conversions they share.
#pragma once

#include <nanobind/nanobind.h>

#include <string>
#include <vector>

#include "tilejit/expr.h"

namespace tilejit::python {

void bind_program(nanobind::module_& m);
void bind_kernel(nanobind::module_& m);
void bind_bench(nanobind::module_& m);
void bind_cache(nanobind::module_& m);
void bind_jit(nanobind::module_& m);

// Called when an instance of `type` (`base`, a vectorcall type of ours, or a subclass) is made.
// Python before 3.12 does not pass Py_TPFLAGS_HAVE_VECTORCALL on to heap subclasses
// (tilejit.Kernel, tilejit.JITImpl): every call would first pack its arguments into a tuple,
// about a tenth of a cpu-backend call with the tuple's share of cycle collections
// (docs/PERFORMANCE.md). A subclass that keeps the base's tp_call gets the flag back, as 3.12
// does. Hazard, as on 3.12 before its fix: a __call__ assigned to such a class afterwards is
// bypassed.
inline void inherit_vectorcall(PyTypeObject* type, PyTypeObject* base) {
#if PY_VERSION_HEX < 0x030C0000
  if (type != base && type->tp_call == PyVectorcall_Call) {
    type->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
  }
#else
  (void)type;
  (void)base;
#endif
}

// An int or an expression text -> Expr. Raises ProgramError naming `what` for anything else
// (and the column, for text that does not parse).
Expr to_expr(nanobind::handle value, const std::string& what);
// A sequence of those.
std::vector<Expr> to_exprs(nanobind::handle values, const std::string& what);

}  // namespace tilejit::python
