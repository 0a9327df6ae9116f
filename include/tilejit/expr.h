// tilejit/expr.h — symbolic integer expressions for shapes, strides, grids and sizes.
//
//   auto e = tilejit::Expr::parse("ceildiv(M, 128) * 2");
//   e.str();                          // "ceildiv(M, 128) * 2" (parse(str()) is the identity)
//   e.eval({{"M", 1000}});            // 16
//   e.variables();                    // {"M"}
//
// Semantics are those of TVM's index arithmetic on int64: `/` and `%` are floor division and
// floor modulo, ceildiv(a, b) = floor((a + b - 1) / b) for b > 0. Division by zero and
// overflow raise ArgumentError at evaluation.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tilejit {

class Expr {
 public:
  enum class Op : uint8_t {
    kConst,
    kVar,
    kAdd,
    kSub,
    kMul,
    kFloorDiv,
    kFloorMod,
    kCeilDiv,
    kMin,
    kMax
  };

  // The deepest tree an Expr may have (a constant or a variable has depth 1, `a + b + c` has
  // depth 3), and the deepest bracket nesting parse() accepts. Deeper expressions are refused
  // where they are built, with a ProgramError, so that every walk over a tree (printing,
  // evaluating, collecting variables, comparing, destroying) has bounded recursion on hostile
  // input.
  static constexpr int kMaxDepth = 1000;

  Expr() : Expr(int64_t{0}) {}
  Expr(int64_t value);  // NOLINT(google-explicit-constructor): constants read naturally
  Expr(int value) : Expr(static_cast<int64_t>(value)) {}  // NOLINT(google-explicit-constructor)
  // Text parses, so shapes can be written {"M", "ceildiv(N, 2)", 128}.
  Expr(const char* text);         // NOLINT(google-explicit-constructor)
  Expr(const std::string& text);  // NOLINT(google-explicit-constructor)
  static Expr var(std::string name);
  // Parses the text grammar of docs/program-format.md. Throws ProgramError with the
  // column of the first bad character (or of the operator or bracket beyond kMaxDepth).
  static Expr parse(std::string_view text);
  // Throws ProgramError when the result would be deeper than kMaxDepth.
  static Expr binary(Op op, Expr lhs, Expr rhs);

  Op op() const;
  bool is_const() const { return op() == Op::kConst; }
  bool is_var() const { return op() == Op::kVar; }
  int64_t const_value() const;          // requires is_const()
  const std::string& var_name() const;  // requires is_var()
  const Expr& lhs() const;              // requires a binary op
  const Expr& rhs() const;
  // Height of the tree: 1 for a constant or a variable.
  int depth() const;

  // Canonical text, minimal parentheses; re-parses to an equal tree.
  std::string str() const;
  // Variables in order of first appearance, each once.
  std::vector<std::string> variables() const;
  // Slow-path evaluation for tools and tests; throws ProgramError for an unbound variable.
  int64_t eval(const std::map<std::string, int64_t, std::less<>>& env) const;

  friend bool operator==(const Expr& a, const Expr& b);

 private:
  struct Node;
  explicit Expr(std::shared_ptr<const Node> node) : node_(std::move(node)) {}
  std::shared_ptr<const Node> node_;
};

Expr operator+(Expr a, Expr b);
Expr operator-(Expr a, Expr b);
Expr operator*(Expr a, Expr b);
Expr operator/(Expr a, Expr b);  // floor division
Expr operator%(Expr a, Expr b);  // floor modulo
Expr ceildiv(Expr a, Expr b);
Expr min(Expr a, Expr b);
Expr max(Expr a, Expr b);

}  // namespace tilejit
