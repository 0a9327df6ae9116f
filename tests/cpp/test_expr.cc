#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "ir/compiled_expr.h"
#include "tilejit/errors.h"
#include "tilejit/expr.h"

namespace tilejit {
namespace {

using Env = std::map<std::string, int64_t, std::less<>>;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(Expr, ParsePrintRoundTripWithMinimalParentheses) {
  const std::pair<std::string, std::string> cases[] = {
      {"ceildiv(M, 128) * 2", "ceildiv(M, 128) * 2"},
      {"a+b*c", "a + b * c"},
      {"(a + b) * c", "(a + b) * c"},
      {"((a) + (b))", "a + b"},
      {"a - (b - c)", "a - (b - c)"},
      {"(a - b) - c", "a - b - c"},
      {"a / b / c", "a / b / c"},
      {"a / (b / c)", "a / (b / c)"},
      {"a * (b % c)", "a * (b % c)"},
      {"(a * b) % c", "a * b % c"},
      {"a - (b + c)", "a - (b + c)"},
      {"min(a, max(b, 3)) % 7", "min(a, max(b, 3)) % 7"},
      {"floordiv(a, b) + floormod(a, 4)", "a / b + a % 4"},
      {"a * -5", "a * -5"},
      {"-9223372036854775808", "-9223372036854775808"},
      {"9223372036854775807", "9223372036854775807"},
      {"  n\t", "n"},
      {"-x", "0 - x"},
  };
  for (const auto& [text, printed] : cases) {
    SCOPED_TRACE(text);
    Expr e = Expr::parse(text);
    EXPECT_EQ(e.str(), printed);
    EXPECT_EQ(Expr::parse(e.str()), e);
  }
}

TEST(Expr, PrecedenceAndAssociativityEvaluate) {
  Env env{{"a", 17}, {"b", 5}, {"c", 3}};
  EXPECT_EQ(Expr::parse("a + b * c").eval(env), 17 + 5 * 3);
  EXPECT_EQ(Expr::parse("a - b - c").eval(env), 17 - 5 - 3);
  EXPECT_EQ(Expr::parse("a - (b - c)").eval(env), 17 - (5 - 3));
  EXPECT_EQ(Expr::parse("a / b * c").eval(env), (17 / 5) * 3);
  EXPECT_EQ(Expr::parse("a % b % c").eval(env), (17 % 5) % 3);
  EXPECT_EQ(Expr::parse("-a * b").eval(env), -17 * 5);
  EXPECT_EQ(Expr::parse("- (a - b)").eval(env), -(17 - 5));
}

TEST(Expr, FloorDivisionModuloAndCeildivWithNegativeOperands) {
  struct Case {
    int64_t a, b, floordiv, floormod, ceildiv;
  };
  const Case cases[] = {
      {7, 2, 3, 1, 4},
      {-7, 2, -4, 1, -3},
      {7, -2, -4, -1, -3},
      {-7, -2, 3, -1, 4},
      {6, 3, 2, 0, 2},
      {-6, 3, -2, 0, -2},
      {0, 5, 0, 0, 0},
      {1, 128, 0, 1, 1},
      {1000, 128, 7, 104, 8},
      {std::numeric_limits<int64_t>::min(), -1, 0, 0, 0},  // div: overflow, checked below
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.a) + ", " + std::to_string(c.b));
    Env env{{"a", c.a}, {"b", c.b}};
    EXPECT_EQ(Expr::parse("a % b").eval(env), c.floormod);
    if (c.a == std::numeric_limits<int64_t>::min()) {
      EXPECT_THROW(Expr::parse("a / b").eval(env), ArgumentError);
      EXPECT_THROW(Expr::parse("ceildiv(a, b)").eval(env), ArgumentError);
      continue;
    }
    EXPECT_EQ(Expr::parse("a / b").eval(env), c.floordiv);
    EXPECT_EQ(Expr::parse("ceildiv(a, b)").eval(env), c.ceildiv);
    // Constant folding uses the same semantics.
    EXPECT_EQ(Expr(c.a) / Expr(c.b), Expr(c.floordiv));
    EXPECT_EQ(Expr(c.a) % Expr(c.b), Expr(c.floormod));
    EXPECT_EQ(ceildiv(Expr(c.a), Expr(c.b)), Expr(c.ceildiv));
  }
}

TEST(Expr, MinMaxAndOperatorsBuildTheSameTreeAsText) {
  Expr M = Expr::var("M");
  Expr N = Expr::var("N");
  EXPECT_EQ(min(M, N) + max(M, 4) * 2, Expr::parse("min(M, N) + max(M, 4) * 2"));
  EXPECT_EQ(ceildiv(M, 128) - N % 3 / 2, Expr::parse("ceildiv(M, 128) - N % 3 / 2"));
  EXPECT_EQ(Expr::parse("min(M, N)").eval({{"M", -3}, {"N", 2}}), -3);
  EXPECT_EQ(Expr::parse("max(M, N)").eval({{"M", -3}, {"N", 2}}), 2);
  EXPECT_NE(Expr::parse("M + N"), Expr::parse("N + M"));
}

TEST(Expr, ConstantsFoldButFailingOperationsStayForEvaluation) {
  EXPECT_TRUE(Expr::parse("2 * 3 + ceildiv(10, 4)").is_const());
  EXPECT_EQ(Expr::parse("2 * 3 + ceildiv(10, 4)").const_value(), 9);
  Expr zero_div = Expr::parse("7 / 0");
  EXPECT_FALSE(zero_div.is_const());
  EXPECT_EQ(zero_div.str(), "7 / 0");
  EXPECT_THROW(zero_div.eval({}), ArgumentError);
  Expr overflow = Expr::parse("9223372036854775807 + 1");
  EXPECT_FALSE(overflow.is_const());
  EXPECT_THROW(overflow.eval({}), ArgumentError);
}

TEST(Expr, VariablesInOrderOfFirstAppearance) {
  EXPECT_EQ(Expr::parse("n * k + ceildiv(m, n) - k").variables(),
            (std::vector<std::string>{"n", "k", "m"}));
  EXPECT_TRUE(Expr::parse("3 * 4").variables().empty());
}

TEST(Expr, ImplicitConstructionFromTextAndIntegers) {
  std::vector<Expr> shape = {"M", "ceildiv(N, 2)", 128, int64_t{1} << 40};
  EXPECT_TRUE(shape[0].is_var());
  EXPECT_EQ(shape[1].op(), Expr::Op::kCeilDiv);
  EXPECT_EQ(shape[2].const_value(), 128);
  EXPECT_EQ(shape[3].const_value(), int64_t{1} << 40);
  EXPECT_EQ(Expr().const_value(), 0);
}

TEST(Expr, ParseErrorsNameTheColumn) {
  const std::pair<std::string, int> cases[] = {
      {"a + * b", 5},
      {"min(a)", 6},
      {"(a + b", 7},
      {"a b", 3},
      {"3x", 2},
      {"", 1},
      {"a +", 4},
      {"a $ b", 3},
      {"ceildiv a", 9},
      {"99999999999999999999", 1},
      {"max(1, 2", 9},
      {"a.b", 2},
      {"-9223372036854775809", 2},
  };
  for (const auto& [text, column] : cases) {
    SCOPED_TRACE(text);
    try {
      Expr::parse(text);
      FAIL() << "accepted";
    } catch (const ProgramError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("'" + text + "'"), std::string::npos) << msg;
      EXPECT_NE(msg.find("column " + std::to_string(column) + ":"), std::string::npos) << msg;
    }
  }
}

TEST(Expr, BadVariableNamesAndUnboundVariables) {
  EXPECT_THROW(Expr::var("1a"), ProgramError);
  EXPECT_THROW(Expr::var(""), ProgramError);
  EXPECT_THROW(Expr::var("min"), ProgramError);
  std::string msg = error_of([] { Expr::parse("M * K").eval({{"M", 2}}); });
  EXPECT_NE(msg.find("'K'"), std::string::npos) << msg;
  EXPECT_THROW(Expr::parse("M * K").eval({{"M", 2}}), ProgramError);
  EXPECT_THROW(Expr::parse("M").const_value(), ProgramError);
  EXPECT_THROW(Expr(3).lhs(), ProgramError);
}

TEST(Expr, DeepNestingIsRejectedNotACrash) {
  std::string deep(100000, '(');
  deep += "1" + std::string(100000, ')');
  EXPECT_THROW(Expr::parse(deep), ProgramError);
  std::string minus(100000, '-');
  EXPECT_THROW(Expr::parse(minus + "x"), ProgramError);
}

// A flat chain of 50,000 terms is a tree 50,000 deep: every walk over it (collecting
// variables, printing, evaluating, destroying) recursed once per term and overflowed the stack.
TEST(Expr, LongFlatChainIsRefusedWithTheDepthLimit) {
  std::string text = "n";
  for (int i = 0; i < 25000; ++i) text += " + n - n";
  std::string msg = error_of([&] { Expr::parse(text); });
  EXPECT_NE(msg.find(fmt::format("nested deeper than {} levels", Expr::kMaxDepth)),
            std::string::npos)
      << msg.substr(0, 200);
  // The column is that of the first operator beyond the limit: "n", then four characters
  // " + n" or " - n" per operator, the operator at the second.
  EXPECT_NE(msg.find(fmt::format("at column {}:", 3 + 4 * (Expr::kMaxDepth - 1))),
            std::string::npos)
      << msg.substr(msg.size() - 200);
  // The message quotes the start of the text only.
  EXPECT_LT(msg.size(), 300u) << msg;
  EXPECT_NE(msg.find(fmt::format("({} characters)", text.size())), std::string::npos) << msg;

  // The deepest accepted chain works in every walk.
  std::string longest = "n";
  int64_t expected = 7;
  for (int i = 1; i < Expr::kMaxDepth; ++i) {
    longest += i % 2 ? " + m" : " - n";
    expected += i % 2 ? 3 : -7;
  }
  Expr e = Expr::parse(longest);
  EXPECT_EQ(e.depth(), Expr::kMaxDepth);
  EXPECT_EQ(e.variables(), (std::vector<std::string>{"n", "m"}));
  EXPECT_EQ(Expr::parse(e.str()), e);
  EXPECT_EQ(e.eval({{"n", 7}, {"m", 3}}), expected);
}

TEST(Expr, ANulInTheTextIsEscapedInTheMessage) {
  const std::string msg = error_of([] { Expr::parse(std::string("a +\0b", 5)); });
  EXPECT_EQ(msg.find('\0'), std::string::npos);
  EXPECT_NE(msg.find("'a +\\x00b' at column 4"), std::string::npos) << msg;
}

TEST(Expr, TheApiRefusesTreesDeeperThanTheLimit) {
  Expr e = Expr::var("a");
  for (int i = 1; i < Expr::kMaxDepth; ++i) e = e * Expr::var("b");
  EXPECT_EQ(e.depth(), Expr::kMaxDepth);
  EXPECT_THROW(e + 1, ProgramError);
  EXPECT_THROW(max(Expr::var("c"), e), ProgramError);
  // Constants fold, so a long constant chain stays shallow.
  Expr folded = 0;
  for (int i = 0; i < 3 * Expr::kMaxDepth; ++i) folded = folded + 1;
  EXPECT_EQ(folded.depth(), 1);
  EXPECT_EQ(folded.const_value(), 3 * Expr::kMaxDepth);
}

TEST(Expr, BracketsCallsAndMinusesShareTheLimit) {
  auto nested = [](int levels, std::string_view open, std::string_view close) {
    std::string text;
    for (int i = 0; i < levels; ++i) text += open;
    text += "x";
    for (int i = 0; i < levels; ++i) text += close;
    return text;
  };
  const int ok = Expr::kMaxDepth - 1;
  EXPECT_EQ(Expr::parse(nested(ok, "(", ")")), Expr::var("x"));
  EXPECT_EQ(Expr::parse(nested(ok, "min(1, ", ")")).depth(), Expr::kMaxDepth);
  EXPECT_EQ(Expr::parse(nested(ok, "-", "")).depth(), Expr::kMaxDepth);
  for (const auto& [open, close] : {std::pair{"(", ")"}, {"min(1, ", ")"}, {"-", ""}}) {
    const std::string text = nested(Expr::kMaxDepth, open, close);
    std::string msg = error_of([&] { Expr::parse(text); });
    EXPECT_NE(msg.find("nested deeper than"), std::string::npos) << open;
  }
}

// Random strings over the grammar's alphabet: each parses and round-trips through str(), or is
// a ProgramError that names a column inside the text (or one past its end).
TEST(Expr, RandomTextParsesOrFailsWithAColumn) {
  const std::string alphabet = "ab_1209 +-*/%(),minaxceildv\t";
  std::mt19937 rng(99);
  int parsed = 0, refused = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    std::string text;
    size_t length = 1 + rng() % 16;
    for (size_t i = 0; i < length; ++i) text += alphabet[rng() % alphabet.size()];
    try {
      Expr e = Expr::parse(text);
      ASSERT_EQ(Expr::parse(e.str()), e) << text;
      ++parsed;
    } catch (const ProgramError& err) {
      std::string msg = err.what();
      size_t at = msg.find("at column ");
      ASSERT_NE(at, std::string::npos) << msg;
      int column = std::stoi(msg.substr(at + 10));
      ASSERT_GE(column, 1) << msg;
      ASSERT_LE(column, static_cast<int>(text.size()) + 1) << msg;
      ++refused;
    }
  }
  EXPECT_GT(parsed, 500);
  EXPECT_GT(refused, 5000);
}

// ---------------------------------------------------------------------------------------------
// CompiledExpr

int slot_of(std::string_view name) {
  if (name == "a") return 0;
  if (name == "b") return 1;
  if (name == "c") return 2;
  return -1;
}

detail::CompiledExpr compile(const Expr& e) {
  return detail::CompiledExpr::compile(e, slot_of, "test expression");
}

TEST(CompiledExpr, EvaluatesOverSlots) {
  int64_t slots[3] = {1000, 128, -7};
  EXPECT_EQ(compile("ceildiv(a, b) * 2 + c % 2").eval(slots), 8 * 2 + 1);
  EXPECT_EQ(compile("min(a, c) - max(b, 3)").eval(slots), -7 - 128);
  EXPECT_TRUE(compile("4 * 8").is_const());
  EXPECT_EQ(compile("4 * 8").eval(slots), 32);
  EXPECT_EQ(detail::CompiledExpr().eval(slots), 0);
  EXPECT_EQ(compile("a / b").text(), "a / b");
}

// Constants and bare variables are answered without walking the code (eval's fast path):
// each must still read its own value and slot, for any values.
TEST(CompiledExpr, ConstantsAndBareVariablesReadTheirOwnValueAndSlot) {
  std::mt19937_64 rng(1301);
  for (int round = 0; round < 200; ++round) {
    int64_t slots[3] = {static_cast<int64_t>(rng()), static_cast<int64_t>(rng()),
                        static_cast<int64_t>(rng())};
    EXPECT_EQ(compile(Expr::var("a")).eval(slots), slots[0]);
    EXPECT_EQ(compile(Expr::var("b")).eval(slots), slots[1]);
    EXPECT_EQ(compile(Expr::var("c")).eval(slots), slots[2]);
    EXPECT_FALSE(compile(Expr::var("c")).is_const());
    const int64_t constant = static_cast<int64_t>(rng());
    EXPECT_EQ(compile(Expr(constant)).eval(slots), constant);
    EXPECT_TRUE(compile(Expr(constant)).is_const());
    // One operation: the code path, over the same slots.
    EXPECT_EQ(compile("max(a, b)").eval(slots), std::max(slots[0], slots[1]));
  }
}

TEST(CompiledExpr, UnknownVariableNamesItAndTheContext) {
  try {
    detail::CompiledExpr::compile(Expr::parse("a * zz"), slot_of, "grid.x of launch 'k'");
    FAIL();
  } catch (const ProgramError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("'zz'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("grid.x of launch 'k'"), std::string::npos) << msg;
  }
}

TEST(CompiledExpr, DivisionByZeroAndOverflowNameTheExpressionAndValues) {
  int64_t slots[3] = {7, 0, std::numeric_limits<int64_t>::max()};
  std::string msg = error_of([&] { compile("a / b").eval(slots); });
  EXPECT_NE(msg.find("'a / b'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("division by zero"), std::string::npos) << msg;
  EXPECT_NE(msg.find("7 / 0"), std::string::npos) << msg;
  EXPECT_THROW(compile("a % b").eval(slots), ArgumentError);
  EXPECT_THROW(compile("ceildiv(a, b)").eval(slots), ArgumentError);

  msg = error_of([&] { compile("c + a").eval(slots); });
  EXPECT_NE(msg.find("overflow"), std::string::npos) << msg;
  EXPECT_NE(msg.find("9223372036854775807 + 7"), std::string::npos) << msg;
  EXPECT_THROW(compile("c * 2").eval(slots), ArgumentError);
  EXPECT_THROW(compile("0 - c - 2").eval(slots), ArgumentError);
}

TEST(CompiledExpr, TooDeepAStackIsRejectedAtCompile) {
  // Right-nested sums keep every left operand on the stack.
  Expr deep = Expr::var("a");
  for (int i = 0; i < detail::CompiledExpr::kMaxDepth; ++i) deep = Expr::var("b") + deep;
  EXPECT_THROW(compile(deep), ProgramError);
  // Left-nested ones need two slots however long they are.
  Expr long_chain = Expr::var("a");
  for (int i = 0; i < 200; ++i) long_chain = long_chain + Expr::var("b");
  int64_t slots[3] = {1, 2, 3};
  EXPECT_EQ(compile(long_chain).eval(slots), 1 + 200 * 2);
}

// An independent reference: the same tree evaluated with 128-bit arithmetic, floor semantics
// derived from C++'s truncating % rather than from tilejit's helpers.
struct RefNode {
  Expr::Op op;
  int64_t value = 0;
  int slot = 0;
  std::shared_ptr<RefNode> lhs, rhs;
};

// GCC/Clang's 128-bit integer; __extension__ keeps -Wpedantic quiet about it.
__extension__ typedef __int128 Wide;

enum class Outcome { kValue, kDivZero, kOverflow };

struct RefResult {
  Outcome outcome;
  int64_t value;
};

RefResult ref_eval(const RefNode& n, const int64_t* slots) {
  if (n.op == Expr::Op::kConst) return {Outcome::kValue, n.value};
  if (n.op == Expr::Op::kVar) return {Outcome::kValue, slots[n.slot]};
  RefResult l = ref_eval(*n.lhs, slots);
  if (l.outcome != Outcome::kValue) return l;
  RefResult r = ref_eval(*n.rhs, slots);
  if (r.outcome != Outcome::kValue) return r;
  Wide a = l.value, b = r.value, out = 0;
  auto floormod = [](Wide x, Wide y) { return ((x % y) + y) % y; };
  switch (n.op) {
    case Expr::Op::kAdd:
      out = a + b;
      break;
    case Expr::Op::kSub:
      out = a - b;
      break;
    case Expr::Op::kMul:
      out = a * b;
      break;
    case Expr::Op::kMin:
      out = a < b ? a : b;
      break;
    case Expr::Op::kMax:
      out = a > b ? a : b;
      break;
    case Expr::Op::kFloorDiv:
      if (b == 0) return {Outcome::kDivZero, 0};
      out = (a - floormod(a, b)) / b;
      break;
    case Expr::Op::kFloorMod:
      if (b == 0) return {Outcome::kDivZero, 0};
      out = floormod(a, b);
      break;
    case Expr::Op::kCeilDiv:
      if (b == 0) return {Outcome::kDivZero, 0};
      out = -((-a - floormod(-a, b)) / b);
      break;
    default:
      break;
  }
  if (out < std::numeric_limits<int64_t>::min() || out > std::numeric_limits<int64_t>::max()) {
    return {Outcome::kOverflow, 0};
  }
  return {Outcome::kValue, static_cast<int64_t>(out)};
}

std::shared_ptr<RefNode> random_tree(std::mt19937_64& rng, int depth) {
  auto node = std::make_shared<RefNode>();
  std::uniform_int_distribution<int> pick(0, 9);
  if (depth == 0 || pick(rng) < 3) {
    if (pick(rng) < 5) {
      node->op = Expr::Op::kVar;
      node->slot = pick(rng) % 3;
    } else {
      node->op = Expr::Op::kConst;
      node->value = std::uniform_int_distribution<int64_t>(-9, 300)(rng);
    }
    return node;
  }
  static constexpr Expr::Op kOps[] = {Expr::Op::kAdd,      Expr::Op::kSub,      Expr::Op::kMul,
                                      Expr::Op::kFloorDiv, Expr::Op::kFloorMod, Expr::Op::kCeilDiv,
                                      Expr::Op::kMin,      Expr::Op::kMax};
  node->op = kOps[std::uniform_int_distribution<int>(0, 7)(rng)];
  node->lhs = random_tree(rng, depth - 1);
  node->rhs = random_tree(rng, depth - 1);
  return node;
}

Expr to_expr(const RefNode& n) {
  static const char* kNames[] = {"a", "b", "c"};
  if (n.op == Expr::Op::kConst) return Expr(n.value);
  if (n.op == Expr::Op::kVar) return Expr::var(kNames[n.slot]);
  return Expr::binary(n.op, to_expr(*n.lhs), to_expr(*n.rhs));
}

int64_t random_value(std::mt19937_64& rng) {
  switch (std::uniform_int_distribution<int>(0, 6)(rng)) {
    case 0:
      return 0;
    case 1:
      return std::numeric_limits<int64_t>::max();
    case 2:
      return std::numeric_limits<int64_t>::min();
    case 3:
      return std::uniform_int_distribution<int64_t>(-(int64_t{1} << 62), int64_t{1} << 62)(rng);
    case 4:
      return std::uniform_int_distribution<int64_t>(-3037000499, 3037000499)(rng);
    default:
      return std::uniform_int_distribution<int64_t>(-50, 50)(rng);
  }
}

TEST(CompiledExpr, RandomTreesAgreeWithSlowEvalAndA128BitReference) {
  std::mt19937_64 rng(20261122);
  int values = 0, div_zero = 0, overflow = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    std::shared_ptr<RefNode> tree = random_tree(rng, 4);
    Expr e = to_expr(*tree);
    ASSERT_EQ(Expr::parse(e.str()), e) << e.str();
    detail::CompiledExpr compiled = compile(e);
    for (int round = 0; round < 8; ++round) {
      int64_t slots[3] = {random_value(rng), random_value(rng), random_value(rng)};
      Env env{{"a", slots[0]}, {"b", slots[1]}, {"c", slots[2]}};
      RefResult ref = ref_eval(*tree, slots);
      SCOPED_TRACE(e.str() + " with a=" + std::to_string(slots[0]) +
                   " b=" + std::to_string(slots[1]) + " c=" + std::to_string(slots[2]));
      if (ref.outcome == Outcome::kValue) {
        ++values;
        ASSERT_EQ(compiled.eval(slots), ref.value);
        ASSERT_EQ(e.eval(env), ref.value);
      } else {
        (ref.outcome == Outcome::kDivZero ? div_zero : overflow)++;
        const char* what = ref.outcome == Outcome::kDivZero ? "division by zero" : "overflow";
        std::string fast = error_of([&] { compiled.eval(slots); });
        std::string slow = error_of([&] { e.eval(env); });
        ASSERT_NE(fast.find(what), std::string::npos) << fast;
        ASSERT_EQ(fast, slow);
        ASSERT_THROW(compiled.eval(slots), ArgumentError);
      }
    }
  }
  // The generator must exercise every outcome, or this test proves less than it claims.
  EXPECT_GT(values, 1000);
  EXPECT_GT(div_zero, 50);
  EXPECT_GT(overflow, 50);
}

}  // namespace
}  // namespace tilejit
