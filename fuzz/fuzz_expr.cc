// libFuzzer target: Expr::parse on arbitrary text. Whatever parses must print to text that
// parses back to an equal tree, name its variables, and evaluate or fail with a tilejit
// error; nothing may crash, hang or overflow the stack.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "ir/compiled_expr.h"
#include "tilejit/errors.h"
#include "tilejit/expr.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  tilejit::Expr e;
  try {
    e = tilejit::Expr::parse(text);
  } catch (const tilejit::ProgramError&) {
    return 0;
  }
  const std::string printed = e.str();
  if (!(tilejit::Expr::parse(printed) == e)) std::abort();  // the printer lost the tree
  if (e.depth() > tilejit::Expr::kMaxDepth) std::abort();

  // Values from the text's length, so that different inputs see different environments,
  // the extremes included.
  const int64_t values[] = {0, 1, -1, static_cast<int64_t>(size), INT64_MAX, INT64_MIN, 7};
  std::map<std::string, int64_t, std::less<>> env;
  std::map<std::string, int, std::less<>> slots;
  int64_t slot_values[8] = {};
  for (const std::string& v : e.variables()) {
    const int64_t value = values[(env.size() + size) % std::size(values)];
    env[v] = value;
    if (slots.size() < std::size(slot_values)) {
      slot_values[slots.size()] = value;
      slots.emplace(v, static_cast<int>(slots.size()));
    }
  }
  int64_t slow = 0;
  bool slow_ok = true;
  try {
    slow = e.eval(env);
  } catch (const tilejit::ArgumentError&) {
    slow_ok = false;  // division by zero or overflow
  }
  // The call path's evaluator agrees with the tree walk, where it accepts the expression.
  if (slots.size() != env.size()) return 0;
  tilejit::detail::CompiledExpr compiled;
  try {
    compiled = tilejit::detail::CompiledExpr::compile(
        e,
        [&](std::string_view name) {
          auto it = slots.find(name);
          return it == slots.end() ? -1 : it->second;
        },
        "the fuzzed expression");
  } catch (const tilejit::ProgramError&) {
    return 0;  // needs a deeper evaluation stack than the call path has
  }
  try {
    const int64_t fast = compiled.eval(slot_values);
    if (!slow_ok || fast != slow) std::abort();
  } catch (const tilejit::ArgumentError&) {
    if (slow_ok) std::abort();
  }
  return 0;
}
