// Shared pieces of every host-wrapper generator: expressions printed as C, identifier
// checks, and a small indenting writer, so that the CUDA, HIP and CPU wrappers print the
// same things the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tilejit/expr.h"

namespace tilejit::detail {

// Prints `expr` as a C/C++ expression whose arithmetic is done in int64_t.
//
// `print_var` spells a variable (the generator decides whether it needs a cast to int64_t,
// e.g. "(int64_t)n" for an int32_t symbol). Subtrees without variables are folded at
// generation time, so no constant arithmetic can overflow a C `int`; every other operation
// has an int64_t operand. `/` and `%` print as C division and remainder, which equal floor
// division and floor modulo for the non-negative values that shapes are; ceildiv(a, b)
// prints as (a + b - 1) / b. Parentheses appear only where C's precedence needs them.
std::string emit_c_expr(const Expr& expr,
                        const std::function<std::string(std::string_view)>& print_var);

// True for [A-Za-z_][A-Za-z0-9_]* that is not a C or C++ keyword.
bool is_c_identifier(std::string_view name);

// Throws ProgramError unless `name` is a C identifier (see is_c_identifier) that does not
// start with the prefix reserved for generated names ("tj_"). `what` names the thing in
// the message ("parameter", "TMA descriptor", "kernel").
void check_c_identifier(std::string_view name, std::string_view what);

// A double-quoted C string literal with `text` escaped.
std::string c_string_literal(std::string_view text);

std::string join(const std::vector<std::string>& parts, std::string_view separator);

// Accumulates generated source line by line with two-space indentation.
//
//   CodeWriter w;
//   w.open("int init(void) {");
//   w.line("return 0;");
//   w.close("}");
class CodeWriter {
 public:
  // One line at the current indentation; an empty text writes an empty line.
  void line(std::string_view text = {});
  // Several lines (separated by '\n') at the current indentation.
  void lines(std::string_view text);
  // A line, then indent what follows.
  void open(std::string_view text);
  // Dedent, then a line.
  void close(std::string_view text);
  // Indent what follows, after a block's opening line written by wrapped().
  void indent() { ++depth_; }
  // `head` + the items separated by ", " + `tail` on one line when it fits in 100 columns;
  // else `head` alone, then the items packed into lines indented 4 more, the last ending with
  // `tail`. For long calls and declarations: head "f(", tail ");".
  void wrapped(std::string_view head, const std::vector<std::string>& items, std::string_view tail);
  const std::string& str() const { return out_; }

 private:
  static constexpr size_t kColumns = 100;
  std::string out_;
  int depth_ = 0;
};

}  // namespace tilejit::detail
