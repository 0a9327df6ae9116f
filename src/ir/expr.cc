// Expr: the tree, its construction (constant folding, the depth bound) and its walks that
// need no text: comparison and the variables. Parsing, printing and evaluation are in
// expr_parse.cc, expr_print.cc and expr_eval.cc.
#include "tilejit/expr.h"

#include <fmt/format.h>
#include <algorithm>
#include <optional>

#include "ir/expr_arith.h"
#include "ir/expr_text.h"
#include "ir/identifier.h"
#include "tilejit/errors.h"

namespace tilejit {

struct Expr::Node {
  Op op = Op::kConst;
  int64_t value = 0;  // kConst
  std::string name;   // kVar
  int depth = 1;      // see Expr::depth()
  // Binary ops only. Optional, because a default Expr owns a node of its own: plain members
  // would recurse without end.
  std::optional<Expr> lhs;
  std::optional<Expr> rhs;
};

namespace {

using detail::ArithStatus;

void collect_variables(const Expr& e, std::vector<std::string>& out) {
  if (e.is_var()) {
    if (std::find(out.begin(), out.end(), e.var_name()) == out.end()) out.push_back(e.var_name());
    return;
  }
  if (e.is_const()) return;
  collect_variables(e.lhs(), out);
  collect_variables(e.rhs(), out);
}

}  // namespace

Expr::Expr(int64_t value) {
  auto node = std::make_shared<Node>();
  node->value = value;
  node_ = std::move(node);
}

Expr Expr::var(std::string name) {
  if (!detail::is_c_identifier(name)) {
    throw ProgramError(
        fmt::format("invalid variable name '{}': expected a C identifier ([A-Za-z_][A-Za-z0-9_]*)",
                    detail::printable(name)));
  }
  for (const detail::ExprFunction& f : detail::kExprFunctions) {
    if (f.name == name) {
      throw ProgramError(fmt::format(
          "invalid variable name '{}': it is the name of a function of the expression language",
          name));
    }
  }
  auto node = std::make_shared<Node>();
  node->op = Op::kVar;
  node->name = std::move(name);
  return Expr(std::shared_ptr<const Node>(std::move(node)));
}

Expr Expr::binary(Op op, Expr lhs, Expr rhs) {
  if (op == Op::kConst || op == Op::kVar) {
    throw ProgramError(fmt::format("Expr::binary needs a binary operator"));
  }
  // Fold constant operands, except where evaluation fails: that error belongs to eval time,
  // with the expression text, and not to the construction of a Program.
  if (lhs.is_const() && rhs.is_const()) {
    int64_t folded = 0;
    if (detail::apply_binary(op, lhs.const_value(), rhs.const_value(), folded) ==
        ArithStatus::kOk) {
      return Expr(folded);
    }
  }
  int depth = std::max(lhs.depth(), rhs.depth()) + 1;
  if (depth > kMaxDepth) {
    throw ProgramError(fmt::format("expression nested deeper than {} levels", kMaxDepth));
  }
  auto node = std::make_shared<Node>();
  node->op = op;
  node->depth = depth;
  node->lhs = std::move(lhs);
  node->rhs = std::move(rhs);
  return Expr(std::shared_ptr<const Node>(std::move(node)));
}

Expr::Op Expr::op() const {
  return node_->op;
}

int64_t Expr::const_value() const {
  if (!is_const()) throw ProgramError(fmt::format("'{}' is not a constant", str()));
  return node_->value;
}

const std::string& Expr::var_name() const {
  if (!is_var()) throw ProgramError(fmt::format("'{}' is not a variable", str()));
  return node_->name;
}

const Expr& Expr::lhs() const {
  if (is_const() || is_var()) throw ProgramError(fmt::format("'{}' has no operands", str()));
  return *node_->lhs;
}

const Expr& Expr::rhs() const {
  if (is_const() || is_var()) throw ProgramError(fmt::format("'{}' has no operands", str()));
  return *node_->rhs;
}

int Expr::depth() const {
  return node_->depth;
}

std::vector<std::string> Expr::variables() const {
  std::vector<std::string> out;
  collect_variables(*this, out);
  return out;
}

bool operator==(const Expr& a, const Expr& b) {
  if (a.node_ == b.node_) return true;
  if (a.op() != b.op()) return false;
  switch (a.op()) {
    case Expr::Op::kConst:
      return a.node_->value == b.node_->value;
    case Expr::Op::kVar:
      return a.node_->name == b.node_->name;
    default:
      return *a.node_->lhs == *b.node_->lhs && *a.node_->rhs == *b.node_->rhs;
  }
}

Expr operator+(Expr a, Expr b) {
  return Expr::binary(Expr::Op::kAdd, std::move(a), std::move(b));
}
Expr operator-(Expr a, Expr b) {
  return Expr::binary(Expr::Op::kSub, std::move(a), std::move(b));
}
Expr operator*(Expr a, Expr b) {
  return Expr::binary(Expr::Op::kMul, std::move(a), std::move(b));
}
Expr operator/(Expr a, Expr b) {
  return Expr::binary(Expr::Op::kFloorDiv, std::move(a), std::move(b));
}
Expr operator%(Expr a, Expr b) {
  return Expr::binary(Expr::Op::kFloorMod, std::move(a), std::move(b));
}
Expr ceildiv(Expr a, Expr b) {
  return Expr::binary(Expr::Op::kCeilDiv, std::move(a), std::move(b));
}
Expr min(Expr a, Expr b) {
  return Expr::binary(Expr::Op::kMin, std::move(a), std::move(b));
}
Expr max(Expr a, Expr b) {
  return Expr::binary(Expr::Op::kMax, std::move(a), std::move(b));
}

}  // namespace tilejit
