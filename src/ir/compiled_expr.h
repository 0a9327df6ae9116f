// The flat, allocation-free form of an Expr evaluated on the call path.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tilejit/expr.h"

namespace tilejit::detail {

// An Expr compiled to postfix over symbol slots. eval() touches no heap: it runs over a
// fixed-size stack (expressions deeper than kMaxDepth are rejected at compile()).
class CompiledExpr {
 public:
  static constexpr int kMaxDepth = 32;

  CompiledExpr() = default;  // the constant 0
  // `slot_of` maps a variable name to its slot, or -1; an unknown variable is a
  // ProgramError that names it and `context` (e.g. "grid.x of launch 'k'").
  static CompiledExpr compile(const Expr& expr, const std::function<int(std::string_view)>& slot_of,
                              std::string_view context);

  // Division by zero or int64 overflow throws ArgumentError naming the expression.
  // A constant or a bare variable (most grid, block and shared-memory sizes) is answered
  // inline, without walking the code: a launch evaluates seven of them per call.
  int64_t eval(const int64_t* slots) const {
    if (shape_ == Shape::kConst) return single_;
    if (shape_ == Shape::kVar) return slots[single_];
    return eval_code(slots);
  }
  bool is_const() const { return shape_ == Shape::kConst; }
  const std::string& text() const { return text_; }

 private:
  struct Instr {
    Expr::Op op;
    int64_t operand;  // constant value, or slot index for kVar
  };
  enum class Shape : uint8_t { kConst, kVar, kCode };
  int64_t eval_code(const int64_t* slots) const;

  Shape shape_ = Shape::kConst;
  int64_t single_ = 0;  // the constant (kConst) or the slot (kVar)
  std::vector<Instr> code_{{Expr::Op::kConst, 0}};
  std::string text_ = "0";
};

}  // namespace tilejit::detail
