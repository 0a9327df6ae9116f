// C and C++ source as tokens, for the declaration reader and the argument resolver
// (signature.h): identifiers, numbers, string literals (kept, because `extern "C"` needs one)
// and punctuation. Comments, character literals, preprocessor lines and `#if 0` blocks never
// become tokens. With the words of C declarations both readers share.
//
//   for (const Token& t : tokenize(source)) if (t.kind == Token::Kind::kIdent) ...
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace tilejit::detail {

struct Token {
  enum class Kind : uint8_t { kIdent, kNumber, kString, kPunct };
  Kind kind;
  std::string_view text;  // into the source: a token lives no longer than the text it came from
};

// Tokens view `source`, which must outlive them. (Copying each token's text cost half the time
// of reading a TileLang kernel's declaration on every cache hit.)
std::vector<Token> tokenize(std::string_view source);

// Identifiers followed by a parenthesized argument list that are not the declared name:
// `__global__ void __launch_bounds__(256, 1) k(...)`.
bool is_attribute_call(std::string_view name);
// Qualifiers dropped from a parameter's type: they do not change how it is passed.
bool is_dropped_qualifier(std::string_view word);
// Words that can end a parameter's type, so an unnamed parameter is not mistaken for a name.
bool is_type_word(std::string_view word);

}  // namespace tilejit::detail
