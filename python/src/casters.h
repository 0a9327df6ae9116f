// How tilejit's value types come back to Python: an Expr as an int (a constant) or a str (its
// canonical text, docs/program-format.md); a DataType as its name ("float16").
#pragma once

#include <nanobind/nanobind.h>

#include <string>

#include "tilejit/dtype.h"
#include "tilejit/expr.h"

namespace nanobind::detail {

template <>
struct type_caster<tilejit::Expr> {
  NB_TYPE_CASTER(tilejit::Expr, const_name("int | str"))

  // Inputs arrive as Python objects and go through to_expr() (bindings.h), which raises
  // ProgramError with the column of a bad character; a caster could only say TypeError.
  bool from_python(handle, uint8_t, cleanup_list*) noexcept { return false; }

  static handle from_cpp(const tilejit::Expr& expr, rv_policy, cleanup_list*) noexcept {
    if (expr.is_const()) {
      return PyLong_FromLongLong(expr.const_value());
    }
    std::string text = expr.str();
    return PyUnicode_FromStringAndSize(text.data(), static_cast<Py_ssize_t>(text.size()));
  }
};

template <>
struct type_caster<tilejit::DataType> {
  NB_TYPE_CASTER(tilejit::DataType, const_name("str"))

  // Inputs are names parsed by DataType::parse, which raises ProgramError naming the text.
  bool from_python(handle, uint8_t, cleanup_list*) noexcept { return false; }

  static handle from_cpp(const tilejit::DataType& dtype, rv_policy, cleanup_list*) noexcept {
    std::string text = dtype.str();
    return PyUnicode_FromStringAndSize(text.data(), static_cast<Py_ssize_t>(text.size()));
  }
};

}  // namespace nanobind::detail
