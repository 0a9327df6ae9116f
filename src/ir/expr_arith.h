// The integer semantics of Expr operators, shared by constant folding, the slow evaluator and
// CompiledExpr so that all three agree bit for bit.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tilejit/expr.h"

namespace tilejit::detail {

enum class ArithStatus : uint8_t { kOk, kDivisionByZero, kOverflow };

// Applies a binary operator to int64 operands: floor division and floor modulo (TVM's index
// semantics), ceildiv as the exact ceiling of a / b. Never invokes undefined behaviour:
// INT64_MIN / -1 is reported as overflow and INT64_MIN % -1 is 0.
inline ArithStatus apply_binary(Expr::Op op, int64_t a, int64_t b, int64_t& out) {
  switch (op) {
    case Expr::Op::kAdd:
      return __builtin_add_overflow(a, b, &out) ? ArithStatus::kOverflow : ArithStatus::kOk;
    case Expr::Op::kSub:
      return __builtin_sub_overflow(a, b, &out) ? ArithStatus::kOverflow : ArithStatus::kOk;
    case Expr::Op::kMul:
      return __builtin_mul_overflow(a, b, &out) ? ArithStatus::kOverflow : ArithStatus::kOk;
    case Expr::Op::kFloorDiv:
    case Expr::Op::kCeilDiv: {
      if (b == 0) return ArithStatus::kDivisionByZero;
      if (a == INT64_MIN && b == -1) return ArithStatus::kOverflow;
      int64_t q = a / b;
      bool inexact = a % b != 0;
      bool same_sign = (a < 0) == (b < 0);
      // C++ truncates toward zero: floor is one lower when the signs differ, ceil one higher
      // when they agree.
      if (inexact && op == Expr::Op::kFloorDiv && !same_sign) --q;
      if (inexact && op == Expr::Op::kCeilDiv && same_sign) ++q;
      out = q;
      return ArithStatus::kOk;
    }
    case Expr::Op::kFloorMod: {
      if (b == 0) return ArithStatus::kDivisionByZero;
      if (b == -1) {
        out = 0;
        return ArithStatus::kOk;
      }
      int64_t r = a % b;
      if (r != 0 && ((r < 0) != (b < 0))) r += b;
      out = r;
      return ArithStatus::kOk;
    }
    case Expr::Op::kMin:
      out = a < b ? a : b;
      return ArithStatus::kOk;
    case Expr::Op::kMax:
      out = a > b ? a : b;
      return ArithStatus::kOk;
    case Expr::Op::kConst:
    case Expr::Op::kVar:
      break;
  }
  out = 0;
  return ArithStatus::kOk;
}

// The operator as written in Expr text: "+", "/", "ceildiv"...
std::string_view op_spelling(Expr::Op op);

// The ArgumentError message for a failed evaluation of `text`.
std::string arith_error_message(ArithStatus status, std::string_view text, Expr::Op op, int64_t a,
                                int64_t b);

}  // namespace tilejit::detail
