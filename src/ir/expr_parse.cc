// Expr::parse: recursive descent over the text grammar of docs/program-format.md, with the
// column of the first bad character in every error.
#include <fmt/format.h>
#include <algorithm>
#include <cstdint>

#include "ir/expr_text.h"
#include "ir/identifier.h"
#include "tilejit/errors.h"
#include "tilejit/expr.h"

namespace tilejit {
namespace {

using detail::is_identifier_char;
using detail::is_identifier_start;

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
      for (const detail::ExprFunction& f : detail::kExprFunctions) {
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

}  // namespace

Expr::Expr(const char* text) : Expr(parse(text)) {}
Expr::Expr(const std::string& text) : Expr(parse(text)) {}

Expr Expr::parse(std::string_view text) {
  return Parser(text).parse_all();
}

}  // namespace tilejit
