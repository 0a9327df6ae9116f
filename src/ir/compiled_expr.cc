#include "ir/compiled_expr.h"

#include <fmt/format.h>

#include <algorithm>

#include "ir/expr_arith.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

// Out of line, so that formatting the message stays off the evaluation loop.
[[noreturn, gnu::cold, gnu::noinline]] void throw_arith_error(ArithStatus status,
                                                              const std::string& text, Expr::Op op,
                                                              int64_t a, int64_t b) {
  throw ArgumentError(arith_error_message(status, text, op, a, b));
}

}  // namespace

CompiledExpr CompiledExpr::compile(const Expr& expr,
                                   const std::function<int(std::string_view)>& slot_of,
                                   std::string_view context) {
  CompiledExpr out;
  out.code_.clear();
  // Emits `e` in postfix order and returns the stack depth its evaluation needs.
  auto emit = [&](auto& self, const Expr& e) -> int {
    switch (e.op()) {
      case Expr::Op::kConst:
        out.code_.push_back(Instr{Expr::Op::kConst, e.const_value()});
        return 1;
      case Expr::Op::kVar: {
        int slot = slot_of(e.var_name());
        if (slot < 0) {
          throw ProgramError(
              fmt::format("unknown variable '{}' in {} ('{}'): expected a shape or "
                          "stride variable or an integer scalar parameter",
                          e.var_name(), context, expr.str()));
        }
        out.code_.push_back(Instr{Expr::Op::kVar, slot});
        return 1;
      }
      default:
        break;
    }
    int lhs_depth = self(self, e.lhs());
    int rhs_depth = self(self, e.rhs());
    out.code_.push_back(Instr{e.op(), 0});
    // The left result waits on the stack while the right operand is evaluated.
    return std::max(lhs_depth, rhs_depth + 1);
  };
  int depth = emit(emit, expr);
  if (depth > kMaxDepth) {
    throw ProgramError(
        fmt::format("expression '{}' in {} is nested too deeply: it needs a stack "
                    "of {} values, at most {} are supported",
                    expr.str(), context, depth, kMaxDepth));
  }
  out.text_ = expr.str();
  if (out.code_.size() == 1) {
    out.shape_ = out.code_[0].op == Expr::Op::kConst ? Shape::kConst : Shape::kVar;
    out.single_ = out.code_[0].operand;
  } else {
    out.shape_ = Shape::kCode;
  }
  return out;
}

int64_t CompiledExpr::eval_code(const int64_t* slots) const {
  int64_t stack[kMaxDepth];
  int top = 0;  // number of values on the stack
  for (const Instr& instr : code_) {
    switch (instr.op) {
      case Expr::Op::kConst:
        stack[top++] = instr.operand;
        break;
      case Expr::Op::kVar:
        stack[top++] = slots[instr.operand];
        break;
      default: {
        int64_t b = stack[--top];
        int64_t a = stack[top - 1];
        ArithStatus status = apply_binary(instr.op, a, b, stack[top - 1]);
        if (status != ArithStatus::kOk) [[unlikely]] {
          throw_arith_error(status, text_, instr.op, a, b);
        }
      }
    }
  }
  return stack[0];
}

}  // namespace tilejit::detail
