// Expr::eval, the slow evaluator for tools and tests (CompiledExpr is the call path's), and
// the message of a failed evaluation that both give.
#include <fmt/format.h>
#include <map>
#include <string>

#include "ir/expr_arith.h"
#include "tilejit/errors.h"
#include "tilejit/expr.h"

namespace tilejit {
namespace detail {

std::string arith_error_message(ArithStatus status, std::string_view text, Expr::Op op, int64_t a,
                                int64_t b) {
  bool is_call = op == Expr::Op::kCeilDiv || op == Expr::Op::kMin || op == Expr::Op::kMax;
  std::string step = is_call ? fmt::format("{}({}, {})", op_spelling(op), a, b)
                             : fmt::format("{} {} {}", a, op_spelling(op), b);
  return fmt::format("evaluating '{}': {} in {}", text,
                     status == ArithStatus::kDivisionByZero ? "division by zero" : "int64 overflow",
                     step);
}

}  // namespace detail

namespace {

using detail::ArithStatus;

int64_t eval_node(const Expr& e, const std::map<std::string, int64_t, std::less<>>& env,
                  const Expr& root) {
  switch (e.op()) {
    case Expr::Op::kConst:
      return e.const_value();
    case Expr::Op::kVar: {
      auto it = env.find(e.var_name());
      if (it == env.end()) {
        throw ProgramError(
            fmt::format("evaluating '{}': variable '{}' has no value", root.str(), e.var_name()));
      }
      return it->second;
    }
    default:
      break;
  }
  int64_t a = eval_node(e.lhs(), env, root);
  int64_t b = eval_node(e.rhs(), env, root);
  int64_t out = 0;
  if (ArithStatus s = detail::apply_binary(e.op(), a, b, out); s != ArithStatus::kOk) {
    throw ArgumentError(detail::arith_error_message(s, root.str(), e.op(), a, b));
  }
  return out;
}

}  // namespace

int64_t Expr::eval(const std::map<std::string, int64_t, std::less<>>& env) const {
  return eval_node(*this, env, *this);
}

}  // namespace tilejit
