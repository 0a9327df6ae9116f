#include "tilejit/expr.h"

#include <fmt/format.h>
#include <algorithm>
#include <optional>

#include "ir/expr_arith.h"
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

bool is_function_op(Expr::Op op) {
  return op == Expr::Op::kCeilDiv || op == Expr::Op::kMin || op == Expr::Op::kMax;
}

// Function-call spellings accepted by the parser. floordiv/floormod are TVM's names for `/`
// and `%`, accepted so that expressions copied from TVM output parse.
struct FunctionName {
  std::string_view name;
  Expr::Op op;
};
constexpr FunctionName kFunctions[] = {
    {"ceildiv", Expr::Op::kCeilDiv},   {"min", Expr::Op::kMin},           {"max", Expr::Op::kMax},
    {"floordiv", Expr::Op::kFloorDiv}, {"floormod", Expr::Op::kFloorMod},
};

using detail::is_identifier_char;
using detail::is_identifier_start;

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

// Recursive descent over the grammar in docs/program-format.md:
//   expr    := term (('+' | '-') term)*
//   term    := unary (('*' | '/' | '%') unary)*
//   unary   := '-' unary | primary
//   primary := integer | identifier | function '(' expr ',' expr ')' | '(' expr ')'
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Expr parse_all() {
    skip_space();
    if (pos_ == text_.size()) fail("expected an expression, found nothing");
    Expr e = parse_expr(0);
    skip_space();
    if (pos_ != text_.size())
      fail(fmt::format("unexpected '{}' after a complete expression", text_[pos_]));
    return e;
  }

 private:
  [[noreturn]] void fail_too_deep() const {
    fail(fmt::format("expression nested deeper than {} levels", Expr::kMaxDepth));
  }

  // The message quotes a long text by its start only: a hostile 200 KB expression must not
  // become a 200 KB message. Control characters are escaped, so a NUL cannot cut it short.
  [[noreturn]] void fail(std::string_view what) const {
    constexpr size_t kQuoted = 80;
    std::string quoted =
        text_.size() <= kQuoted
            ? fmt::format("'{}'", text_)
            : fmt::format("'{}...' ({} characters)", text_.substr(0, kQuoted), text_.size());
    throw ProgramError(detail::printable(
        fmt::format("invalid expression {} at column {}: {}", quoted, pos_ + 1, what)));
  }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  // The position of the next token, for messages about it.
  size_t next_token() {
    skip_space();
    return pos_;
  }

  bool accept(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c, std::string_view context) {
    if (!accept(c)) {
      fail(pos_ < text_.size()
               ? fmt::format("expected '{}' {}, found '{}'", c, context, text_[pos_])
               : fmt::format("expected '{}' {}, found the end", c, context));
    }
  }

  // Expr::binary with the column of the operator when the result would be too deep.
  Expr combine(Expr::Op op, Expr lhs, Expr rhs, size_t op_pos) {
    if (std::max(lhs.depth(), rhs.depth()) >= Expr::kMaxDepth) {
      pos_ = op_pos;
      fail_too_deep();
    }
    return Expr::binary(op, std::move(lhs), std::move(rhs));
  }

  // `depth` counts the brackets, calls and unary minuses around the current position; it
  // bounds the parser's own recursion.
  Expr parse_expr(int depth) {
    if (depth >= Expr::kMaxDepth) fail_too_deep();
    Expr lhs = parse_term(depth);
    for (;;) {
      size_t op_pos = next_token();
      if (accept('+')) {
        lhs = combine(Expr::Op::kAdd, std::move(lhs), parse_term(depth), op_pos);
      } else if (accept('-')) {
        lhs = combine(Expr::Op::kSub, std::move(lhs), parse_term(depth), op_pos);
      } else {
        return lhs;
      }
    }
  }

  Expr parse_term(int depth) {
    Expr lhs = parse_unary(depth);
    for (;;) {
      size_t op_pos = next_token();
      if (accept('*')) {
        lhs = combine(Expr::Op::kMul, std::move(lhs), parse_unary(depth), op_pos);
      } else if (accept('/')) {
        lhs = combine(Expr::Op::kFloorDiv, std::move(lhs), parse_unary(depth), op_pos);
      } else if (accept('%')) {
        lhs = combine(Expr::Op::kFloorMod, std::move(lhs), parse_unary(depth), op_pos);
      } else {
        return lhs;
      }
    }
  }

  Expr parse_unary(int depth) {
    if (depth >= Expr::kMaxDepth) fail_too_deep();
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '-') {
      size_t op_pos = pos_;
      ++pos_;
      skip_space();
      // A minus directly before a literal is part of it, so that INT64_MIN is writable.
      if (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        return Expr(parse_integer(/*negative=*/true));
      }
      return combine(Expr::Op::kSub, Expr(0), parse_unary(depth + 1), op_pos);
    }
    return parse_primary(depth);
  }

  int64_t parse_integer(bool negative) {
    size_t start = pos_;
    uint64_t magnitude = 0;
    const uint64_t limit = negative ? uint64_t{1} << 63 : uint64_t{INT64_MAX};
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      uint64_t digit = static_cast<uint64_t>(text_[pos_] - '0');
      if (magnitude > (limit - digit) / 10) {
        pos_ = start;
        fail("integer literal does not fit in int64");
      }
      magnitude = magnitude * 10 + digit;
      ++pos_;
    }
    if (pos_ < text_.size() && is_identifier_start(text_[pos_])) {
      fail(fmt::format("unexpected '{}' in an integer literal", text_[pos_]));
    }
    if (!negative) return static_cast<int64_t>(magnitude);
    return magnitude == (uint64_t{1} << 63) ? INT64_MIN : -static_cast<int64_t>(magnitude);
  }

  Expr parse_primary(int depth) {
    skip_space();
    if (pos_ == text_.size())
      fail("expected a number, a variable, '(' or a function call, found the end");
    char c = text_[pos_];
    if (c >= '0' && c <= '9') return Expr(parse_integer(/*negative=*/false));
    if (c == '(') {
      ++pos_;
      Expr inner = parse_expr(depth + 1);
      expect(')', "to close '('");
      return inner;
    }
    if (is_identifier_start(c)) {
      size_t start = pos_;
      while (pos_ < text_.size() && is_identifier_char(text_[pos_])) ++pos_;
      std::string_view name = text_.substr(start, pos_ - start);
      for (const FunctionName& f : kFunctions) {
        if (f.name != name) continue;
        expect('(', fmt::format("after the function name '{}'", name));
        Expr a = parse_expr(depth + 1);
        expect(',', fmt::format("between the two arguments of '{}'", name));
        Expr b = parse_expr(depth + 1);
        expect(')', fmt::format("after the second argument of '{}'", name));
        return combine(f.op, std::move(a), std::move(b), start);
      }
      return Expr::var(std::string(name));
    }
    fail(fmt::format("expected a number, a variable, '(' or a function call, found '{}'", c));
  }

  std::string_view text_;
  size_t pos_ = 0;
};

void collect_variables(const Expr& e, std::vector<std::string>& out) {
  if (e.is_var()) {
    if (std::find(out.begin(), out.end(), e.var_name()) == out.end()) out.push_back(e.var_name());
    return;
  }
  if (e.is_const()) return;
  collect_variables(e.lhs(), out);
  collect_variables(e.rhs(), out);
}

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

Expr::Expr(int64_t value) {
  auto node = std::make_shared<Node>();
  node->value = value;
  node_ = std::move(node);
}

Expr::Expr(const char* text) : Expr(parse(text)) {}
Expr::Expr(const std::string& text) : Expr(parse(text)) {}

Expr Expr::var(std::string name) {
  if (!detail::is_c_identifier(name)) {
    throw ProgramError(
        fmt::format("invalid variable name '{}': expected a C identifier ([A-Za-z_][A-Za-z0-9_]*)",
                    detail::printable(name)));
  }
  for (const FunctionName& f : kFunctions) {
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

Expr Expr::parse(std::string_view text) {
  return Parser(text).parse_all();
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

std::string Expr::str() const {
  std::string out;
  print(*this, out);
  return out;
}

std::vector<std::string> Expr::variables() const {
  std::vector<std::string> out;
  collect_variables(*this, out);
  return out;
}

int64_t Expr::eval(const std::map<std::string, int64_t, std::less<>>& env) const {
  return eval_node(*this, env, *this);
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
