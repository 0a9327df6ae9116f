// C identifiers: the names of params, variables, kernels and descriptors, which generated code
// uses as they are.
#pragma once

#include <algorithm>
#include <string_view>

namespace tilejit::detail {

constexpr bool is_identifier_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

constexpr bool is_identifier_char(char c) {
  return is_identifier_start(c) || (c >= '0' && c <= '9');
}

// [A-Za-z_][A-Za-z0-9_]*
inline bool is_c_identifier(std::string_view name) {
  return !name.empty() && is_identifier_start(name[0]) &&
         std::all_of(name.begin(), name.end(), is_identifier_char);
}

}  // namespace tilejit::detail
