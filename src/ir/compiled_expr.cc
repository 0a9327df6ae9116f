#include "ir/compiled_expr.h"

#include <fmt/format.h>

#include "ir/expr_arith.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

// Emits `e` in postfix order and returns the stack depth its evaluation needs.
int emit(const Expr& e, const std::function<int(std::string_view)>& slot_of,
         std::string_view context, const Expr& root,
         std::vector<std::pair<Expr::Op, int64_t>>& out) {
  switch (e.op()) {
    case Expr::Op::kConst:
      out.emplace_back(Expr::Op::kConst, e.const_value());
      return 1;
    case Expr::Op::kVar: {
      int slot = slot_of(e.var_name());
      if (slot < 0) {
        throw ProgramError(
            fmt::format("unknown variable '{}' in {} ('{}'): expected a shape or "
                        "stride variable or an integer scalar parameter",
                        e.var_name(), context, root.str()));
      }
      out.emplace_back(Expr::Op::kVar, slot);
      return 1;
    }
    default:
      break;
  }
  int lhs_depth = emit(e.lhs(), slot_of, context, root, out);
  int rhs_depth = emit(e.rhs(), slot_of, context, root, out);
  out.emplace_back(e.op(), 0);
  // The left result waits on the stack while the right operand is evaluated.
  return std::max(lhs_depth, rhs_depth + 1);
}

}  // namespace

CompiledExpr CompiledExpr::compile(const Expr& expr,
                                   const std::function<int(std::string_view)>& slot_of,
                                   std::string_view context) {
  std::vector<std::pair<Expr::Op, int64_t>> postfix;
  int depth = emit(expr, slot_of, context, expr, postfix);
  if (depth > kMaxDepth) {
    throw ProgramError(
        fmt::format("expression '{}' in {} is nested too deeply: it needs a stack "
                    "of {} values, at most {} are supported",
                    expr.str(), context, depth, kMaxDepth));
  }
  CompiledExpr out;
  out.code_.clear();
  out.code_.reserve(postfix.size());
  for (const auto& [op, operand] : postfix) out.code_.push_back(Instr{op, operand});
  out.text_ = expr.str();
  return out;
}

int64_t CompiledExpr::eval(const int64_t* slots) const {
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
        if (status != ArithStatus::kOk) {
          throw ArgumentError(arith_error_message(status, text_, instr.op, a, b));
        }
      }
    }
  }
  return stack[0];
}

}  // namespace tilejit::detail
