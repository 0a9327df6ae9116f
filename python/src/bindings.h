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

// An int or an expression text -> Expr. Raises ProgramError naming `what` for anything else
// (and the column, for text that does not parse).
Expr to_expr(nanobind::handle value, const std::string& what);
// A sequence of those.
std::vector<Expr> to_exprs(nanobind::handle values, const std::string& what);

}  // namespace tilejit::python
