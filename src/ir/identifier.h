// C identifiers: the names of params, variables, kernels and descriptors, which generated code
// uses as they are.
#pragma once

#include <algorithm>
#include <string>
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

// `text` for an error message: control characters and bytes above 0x7e as \xNN, so that a NUL
// cannot end the message early and a bad name reads as what it is.
inline std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out;
}

}  // namespace tilejit::detail
