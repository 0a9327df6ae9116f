// The function-call spellings of Expr text, shared by the parser and Expr::var (a variable may
// not take a function's name). floordiv/floormod are TVM's names for `/` and `%`, accepted so
// that expressions copied from TVM output parse.
#pragma once

#include <string_view>

#include "tilejit/expr.h"

namespace tilejit::detail {

struct ExprFunction {
  std::string_view name;
  Expr::Op op;
};
inline constexpr ExprFunction kExprFunctions[] = {
    {"ceildiv", Expr::Op::kCeilDiv},   {"min", Expr::Op::kMin},           {"max", Expr::Op::kMax},
    {"floordiv", Expr::Op::kFloorDiv}, {"floormod", Expr::Op::kFloorMod},
};

}  // namespace tilejit::detail
