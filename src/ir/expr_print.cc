// Expr::str: the canonical text, with parentheses only where precedence needs them.
#include <string>

#include "ir/expr_arith.h"
#include "tilejit/expr.h"

namespace tilejit {
namespace detail {

std::string_view op_spelling(Expr::Op op) {
  switch (op) {
    case Expr::Op::kAdd:
      return "+";
    case Expr::Op::kSub:
      return "-";
    case Expr::Op::kMul:
      return "*";
    case Expr::Op::kFloorDiv:
      return "/";
    case Expr::Op::kFloorMod:
      return "%";
    case Expr::Op::kCeilDiv:
      return "ceildiv";
    case Expr::Op::kMin:
      return "min";
    case Expr::Op::kMax:
      return "max";
    case Expr::Op::kConst:
    case Expr::Op::kVar:
      break;
  }
  return "?";
}

}  // namespace detail

namespace {

bool is_function_op(Expr::Op op) {
  return op == Expr::Op::kCeilDiv || op == Expr::Op::kMin || op == Expr::Op::kMax;
}

// Binding strength for printing: sums bind loosest, atoms (constants, variables, calls) most.
int precedence(const Expr& e) {
  switch (e.op()) {
    case Expr::Op::kAdd:
    case Expr::Op::kSub:
      return 1;
    case Expr::Op::kMul:
    case Expr::Op::kFloorDiv:
    case Expr::Op::kFloorMod:
      return 2;
    default:
      return 3;
  }
}

void print(const Expr& e, std::string& out) {
  switch (e.op()) {
    case Expr::Op::kConst:
      out += std::to_string(e.const_value());
      return;
    case Expr::Op::kVar:
      out += e.var_name();
      return;
    default:
      break;
  }
  if (is_function_op(e.op())) {
    out += detail::op_spelling(e.op());
    out += '(';
    print(e.lhs(), out);
    out += ", ";
    print(e.rhs(), out);
    out += ')';
    return;
  }
  // Operators are left-associative, so a right operand of equal strength needs parentheses
  // to keep its tree shape: a - (b - c), a / (b * c).
  int mine = precedence(e);
  bool paren_lhs = precedence(e.lhs()) < mine;
  bool paren_rhs = precedence(e.rhs()) <= mine;
  if (paren_lhs) out += '(';
  print(e.lhs(), out);
  if (paren_lhs) out += ')';
  out += ' ';
  out += detail::op_spelling(e.op());
  out += ' ';
  if (paren_rhs) out += '(';
  print(e.rhs(), out);
  if (paren_rhs) out += ')';
}

}  // namespace

std::string Expr::str() const {
  std::string out;
  print(*this, out);
  return out;
}

}  // namespace tilejit
