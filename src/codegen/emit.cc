#include "codegen/emit.h"

#include <cstdint>
#include <limits>

#include <fmt/format.h>

#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

// C precedence levels of what emit_c_expr prints; higher binds tighter.
enum Precedence : int { kAdditive = 1, kMultiplicative = 2, kPrimary = 3 };

struct Printed {
  std::string text;
  int precedence;
};

Printed print_constant(int64_t value) {
  if (value == std::numeric_limits<int64_t>::min()) {
    // -9223372036854775808 is not a literal in C: the magnitude alone does not fit.
    return {"(-9223372036854775807 - 1)", kPrimary};
  }
  if (value < 0) return {fmt::format("({})", value), kPrimary};
  return {fmt::format("{}", value), kPrimary};
}

std::string operand(const Printed& printed, int min_precedence) {
  return printed.precedence >= min_precedence ? printed.text : "(" + printed.text + ")";
}

Printed print(const Expr& expr, const std::function<std::string(std::string_view)>& print_var) {
  if (expr.is_var()) return {print_var(expr.var_name()), kPrimary};
  // Folding constant subtrees keeps every remaining operation in int64_t (one operand has a
  // variable, printed as int64_t) and turns division by a zero constant into a
  // generation-time error instead of undefined behaviour in the generated code.
  if (expr.variables().empty()) return print_constant(expr.eval({}));

  Printed lhs = print(expr.lhs(), print_var);
  Printed rhs = print(expr.rhs(), print_var);
  // Left-associative binary operators: the right operand needs parentheses at equal
  // precedence (a - (b - c), a / (b * c)).
  auto binary = [&](std::string_view symbol, int precedence) {
    return Printed{
        fmt::format("{} {} {}", operand(lhs, precedence), symbol, operand(rhs, precedence + 1)),
        precedence};
  };
  switch (expr.op()) {
    case Expr::Op::kAdd:
      return binary("+", kAdditive);
    case Expr::Op::kSub:
      return binary("-", kAdditive);
    case Expr::Op::kMul:
      return binary("*", kMultiplicative);
    case Expr::Op::kFloorDiv:
      return binary("/", kMultiplicative);
    case Expr::Op::kFloorMod:
      return binary("%", kMultiplicative);
    case Expr::Op::kCeilDiv:
      if (expr.rhs().is_const() && expr.rhs().const_value() > 0) {
        // ceildiv(n, 256) reads best as (n + 255) / 256.
        const int64_t divisor = expr.rhs().const_value();
        if (divisor == 1) return lhs;
        return Printed{fmt::format("({} + {}) / {}", operand(lhs, kAdditive), divisor - 1, divisor),
                       kMultiplicative};
      }
      return Printed{fmt::format("({} + {} - 1) / {}", operand(lhs, kAdditive),
                                 operand(rhs, kMultiplicative), operand(rhs, kPrimary)),
                     kMultiplicative};
    case Expr::Op::kMin:
      return Printed{
          fmt::format("({0} < {1} ? {0} : {1})", operand(lhs, kAdditive), operand(rhs, kAdditive)),
          kPrimary};
    case Expr::Op::kMax:
      return Printed{
          fmt::format("({0} > {1} ? {0} : {1})", operand(lhs, kAdditive), operand(rhs, kAdditive)),
          kPrimary};
    case Expr::Op::kConst:
    case Expr::Op::kVar:
      break;
  }
  throw ProgramError(fmt::format("cannot print expression '{}' as C", expr.str()));
}

constexpr std::string_view kKeywords[] = {
    // C
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict",
    "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "_Alignas", "_Alignof", "_Atomic", "_Bool", "_Complex",
    "_Generic", "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local",
    // C++ beyond C
    "alignas", "alignof", "and", "and_eq", "asm", "bitand", "bitor", "bool", "catch", "char8_t",
    "char16_t", "char32_t", "class", "compl", "concept", "consteval", "constexpr", "constinit",
    "const_cast", "co_await", "co_return", "co_yield", "decltype", "delete", "dynamic_cast",
    "explicit", "export", "false", "friend", "mutable", "namespace", "new", "noexcept", "not",
    "not_eq", "nullptr", "operator", "or", "or_eq", "private", "protected", "public",
    "reinterpret_cast", "requires", "static_assert", "static_cast", "template", "this",
    "thread_local", "throw", "true", "try", "typeid"};

}  // namespace

std::string emit_c_expr(const Expr& expr,
                        const std::function<std::string(std::string_view)>& print_var) {
  return print(expr, print_var).text;
}

bool is_c_identifier(std::string_view name) {
  if (name.empty()) return false;
  auto is_alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!is_alpha(name.front())) return false;
  for (char c : name) {
    if (!is_alpha(c) && !is_digit(c)) return false;
  }
  for (std::string_view keyword : kKeywords) {
    if (name == keyword) return false;
  }
  return true;
}

void check_c_identifier(std::string_view name, std::string_view what) {
  if (!is_c_identifier(name)) {
    throw ProgramError(fmt::format(
        "{} name '{}' cannot be used in generated host code: expected a C identifier that is "
        "not a C or C++ keyword",
        what, name));
  }
  if (name.starts_with("tj_")) {
    throw ProgramError(fmt::format(
        "{} name '{}' cannot be used in generated host code: the prefix 'tj_' is reserved for "
        "names the generator makes",
        what, name));
  }
}

std::string c_string_literal(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  out += '"';
  return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

void CodeWriter::line(std::string_view text) {
  if (!text.empty()) out_.append(static_cast<size_t>(depth_) * 2, ' ');
  out_ += text;
  out_ += '\n';
}

void CodeWriter::lines(std::string_view text) {
  while (!text.empty()) {
    size_t end = text.find('\n');
    line(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

void CodeWriter::wrapped(std::string_view head, const std::vector<std::string>& items,
                         std::string_view tail) {
  const size_t indent = static_cast<size_t>(depth_) * 2;
  const std::string one_line = std::string(head) + join(items, ", ") + std::string(tail);
  if (indent + one_line.size() <= kColumns || items.empty()) {
    line(one_line);
    return;
  }
  line(head);
  depth_ += 2;
  const size_t width = kColumns - indent - 4;
  std::string current;
  for (size_t i = 0; i < items.size(); ++i) {
    const bool last = i + 1 == items.size();
    const std::string ending = last ? std::string(tail) : ",";
    std::string candidate = current.empty() ? items[i] : current + ", " + items[i];
    if (!current.empty() && candidate.size() + ending.size() > width) {
      line(current + ",");
      candidate = items[i];
    }
    current = candidate;
  }
  line(current + std::string(tail));
  depth_ -= 2;
}

void CodeWriter::open(std::string_view text) {
  line(text);
  ++depth_;
}

void CodeWriter::close(std::string_view text) {
  --depth_;
  line(text);
}

}  // namespace tilejit::detail
