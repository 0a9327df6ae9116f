#include "ir/signature.h"

#include <fmt/format.h>
#include <algorithm>
#include <initializer_list>
#include <optional>
#include <set>

#include "ir/identifier.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

// ---------------------------------------------------------------------------------------------
// Tokens: identifiers, numbers, string literals (kept, because `extern "C"` needs one) and
// punctuation. Comments, character literals and preprocessor lines never become tokens.

struct Token {
  enum class Kind : uint8_t { kIdent, kNumber, kString, kPunct };
  Kind kind;
  std::string text;
};

class Lexer {
 public:
  explicit Lexer(std::string_view source) : s_(source) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    bool line_start = true;  // only whitespace since the last newline
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\n') {
        line_start = true;
        ++pos_;
        continue;
      }
      if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        ++pos_;
        continue;
      }
      if (c == '\\' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '\n') {  // line splice
        pos_ += 2;
        continue;
      }
      if (starts_with("//")) {
        skip_line();
        continue;
      }
      if (starts_with("/*")) {
        size_t end = s_.find("*/", pos_ + 2);
        pos_ = end == std::string_view::npos ? s_.size() : end + 2;
        continue;
      }
      if (c == '#' && line_start) {
        // A directive, continuation lines included. Code under `#if 0` is no code at all.
        if (is_if_zero(read_directive())) skip_disabled_block();
        continue;
      }
      line_start = false;
      if (raw_string_prefix_length() != 0) {
        out.push_back({Token::Kind::kString, read_raw_string()});
        continue;
      }
      if (is_identifier_start(c)) {
        size_t start = pos_;
        while (pos_ < s_.size() && is_identifier_char(s_[pos_])) ++pos_;
        // An encoding prefix glued to a literal (u8"..", L'x') belongs to the literal.
        if (pos_ < s_.size() && (s_[pos_] == '"' || s_[pos_] == '\'')) {
          std::string_view prefix = s_.substr(start, pos_ - start);
          if (prefix == "u8" || prefix == "u" || prefix == "U" || prefix == "L") continue;
        }
        out.push_back({Token::Kind::kIdent, std::string(s_.substr(start, pos_ - start))});
        continue;
      }
      if (c >= '0' && c <= '9') {
        size_t start = pos_;
        // pp-number: digits, letters, '.', digit separators, and a sign after an exponent.
        auto continues_number = [&](char d) {
          char prev = s_[pos_ - 1];
          bool exponent_sign =
              (d == '+' || d == '-') && (prev == 'e' || prev == 'E' || prev == 'p' || prev == 'P');
          return is_identifier_char(d) || d == '.' || d == '\'' || exponent_sign;
        };
        ++pos_;  // the digit: continues_number looks one character back
        while (pos_ < s_.size() && continues_number(s_[pos_])) ++pos_;
        out.push_back({Token::Kind::kNumber, std::string(s_.substr(start, pos_ - start))});
        continue;
      }
      if (c == '"' || c == '\'') {
        std::string text = read_quoted(c);
        if (c == '"') out.push_back({Token::Kind::kString, std::move(text)});
        continue;
      }
      if (starts_with("::")) {
        out.push_back({Token::Kind::kPunct, "::"});
        pos_ += 2;
        continue;
      }
      out.push_back({Token::Kind::kPunct, std::string(1, c)});
      ++pos_;
    }
    return out;
  }

 private:
  bool starts_with(std::string_view prefix) const { return s_.substr(pos_).starts_with(prefix); }

  // The directive at pos_ (at its '#'), without the '#' and surrounding spaces; moves past it.
  std::string_view read_directive() {
    size_t start = ++pos_;
    skip_line();
    std::string_view text = s_.substr(start, pos_ - start);
    size_t first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    text.remove_prefix(first);
    size_t last = text.find_last_not_of(" \t\r");
    return text.substr(0, last + 1);
  }

  static bool is_if_zero(std::string_view directive) {
    if (!directive.starts_with("if")) return false;
    directive.remove_prefix(2);
    if (directive.empty() || (directive[0] != ' ' && directive[0] != '\t')) return false;
    size_t first = directive.find_first_not_of(" \t");
    directive.remove_prefix(first);
    if (!directive.starts_with("0")) return false;
    directive.remove_prefix(1);
    return directive.empty() || directive[0] == ' ' || directive[0] == '\t' ||
           directive.starts_with("//") || directive.starts_with("/*");
  }

  // Skips to the #else, #elif or #endif that ends an `#if 0` block, over nested conditionals.
  void skip_disabled_block() {
    int depth = 0;
    while (pos_ < s_.size()) {
      ++pos_;  // the newline that ended the previous line
      size_t first = pos_;
      while (first < s_.size() && (s_[first] == ' ' || s_[first] == '\t')) ++first;
      if (first >= s_.size() || s_[first] != '#') {
        skip_line();
        continue;
      }
      pos_ = first;
      std::string_view directive = read_directive();
      if (directive.starts_with("if")) {
        ++depth;
      } else if (directive.starts_with("endif")) {
        if (depth-- == 0) return;
      } else if (depth == 0 && (directive.starts_with("else") || directive.starts_with("elif"))) {
        return;
      }
    }
  }

  void skip_line() {
    while (pos_ < s_.size() && s_[pos_] != '\n') {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '\n') ++pos_;
      ++pos_;
    }
  }

  // A quoted literal with backslash escapes; an unterminated one ends at the line's end.
  std::string read_quoted(char quote) {
    size_t start = ++pos_;
    while (pos_ < s_.size() && s_[pos_] != quote && s_[pos_] != '\n') {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      ++pos_;
    }
    std::string text(s_.substr(start, pos_ - start));
    if (pos_ < s_.size() && s_[pos_] == quote) ++pos_;
    return text;
  }

  // Length of a raw-string prefix (R", u8R", LR"...) at pos_, or 0.
  size_t raw_string_prefix_length() const {
    for (std::string_view p : {"R\"", "u8R\"", "uR\"", "UR\"", "LR\""}) {
      if (starts_with(p) && (pos_ == 0 || !is_identifier_char(s_[pos_ - 1]))) return p.size();
    }
    return 0;
  }

  std::string read_raw_string() {
    pos_ += raw_string_prefix_length();
    size_t open = s_.find('(', pos_);
    if (open == std::string_view::npos) {
      pos_ = s_.size();
      return {};
    }
    std::string closing = ")" + std::string(s_.substr(pos_, open - pos_)) + "\"";
    size_t end = s_.find(closing, open + 1);
    std::string text(
        s_.substr(open + 1, (end == std::string_view::npos ? s_.size() : end) - open - 1));
    pos_ = end == std::string_view::npos ? s_.size() : end + closing.size();
    return text;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Declarations

// Identifiers followed by a parenthesized argument list that are not the declared name:
// `__global__ void __launch_bounds__(256, 1) k(...)`.
bool is_attribute_call(std::string_view name) {
  static const std::set<std::string_view> kAttributes = {
      "__launch_bounds__", "__attribute__", "__declspec",       "alignas",      "__align__",
      "decltype",          "__maxnreg__",   "__cluster_dims__", "__noinline__", "noexcept",
      "__forceinline__",   "throw",         "sizeof",           "alignof"};
  return kAttributes.count(name) != 0;
}

// Qualifiers dropped from a parameter's type: they do not change how it is passed.
bool is_dropped_qualifier(std::string_view word) {
  return word == "__restrict__" || word == "__restrict" || word == "restrict" ||
         word == "__grid_constant__" || word == "register";
}

// Words that can end a parameter's type, so an unnamed parameter is not mistaken for a name.
// Words that cannot follow a function declarator's ')' but begin a declaration.
bool starts_declaration(std::string_view word) {
  static const std::set<std::string_view> kWords = {
      "extern",         "__global__", "__device__", "__host__", "template", "namespace", "typedef",
      "struct",         "class",      "union",      "enum",     "static",   "inline",    "using",
      "void",           "int",        "float",      "double",   "char",     "unsigned",  "signed",
      "__forceinline__"};
  return kWords.count(word) != 0;
}

bool is_type_word(std::string_view word) {
  static const std::set<std::string_view> kWords = {
      "void", "char",  "short",  "int",      "long",  "float",   "double",
      "bool", "_Bool", "signed", "unsigned", "const", "volatile"};
  return kWords.count(word) != 0;
}

class DeclarationParser {
 public:
  DeclarationParser(std::vector<Token> tokens, bool require_global)
      : t_(std::move(tokens)), require_global_(require_global) {}

  std::vector<KernelDeclaration> run() {
    std::vector<KernelDeclaration> out;
    while (pos_ < t_.size()) parse_statement(out);
    return out;
  }

 private:
  bool at(std::string_view text, size_t offset = 0) const {
    return pos_ + offset < t_.size() && t_[pos_ + offset].kind != Token::Kind::kString &&
           t_[pos_ + offset].text == text;
  }

  // Moves past the bracket that closes the one at pos_ ('(' '[' or '{').
  void skip_balanced() {
    int depth = 0;
    for (; pos_ < t_.size(); ++pos_) {
      const Token& tok = t_[pos_];
      if (tok.kind != Token::Kind::kPunct) continue;
      if (tok.text == "(" || tok.text == "[" || tok.text == "{") ++depth;
      if (tok.text == ")" || tok.text == "]" || tok.text == "}") {
        if (--depth == 0) {
          ++pos_;
          return;
        }
      }
    }
  }

  // One declaration or statement at a scope whose contents we look into (file, namespace,
  // extern "C" block). Scopes we do not look into (struct bodies, initializers, function
  // bodies) are skipped whole.
  void parse_statement(std::vector<KernelDeclaration>& out) {
    if (at("}")) {  // the end of an enclosing namespace / extern "C" block
      ++pos_;
      if (!extern_c_scopes_.empty()) extern_c_scopes_.pop_back();
      return;
    }
    if (at(";")) {
      ++pos_;
      return;
    }
    size_t start = pos_;
    template_params_.clear();
    if (at("template")) {
      ++pos_;
      template_params_ = read_template_parameters();
    }
    for (;;) {
      if (pos_ >= t_.size()) return;
      if (at(";")) {
        ++pos_;
        return;
      }
      if (at("{")) {
        if (opens_transparent_scope(start)) {
          extern_c_scopes_.push_back(is_extern_c(start));
          ++pos_;  // its contents are parsed as statements
          return;
        }
        skip_balanced();  // struct/enum body or brace initializer; the statement goes on
        continue;
      }
      if (at("=")) {  // a variable with an initializer, not a function
        skip_to_statement_end();
        return;
      }
      if (at("(") && pos_ > start && t_[pos_ - 1].kind == Token::Kind::kIdent) {
        if (is_attribute_call(t_[pos_ - 1].text)) {
          skip_balanced();
          continue;
        }
        parse_function(start, out);
        return;
      }
      if (at("(") || at("[")) {
        skip_balanced();
        continue;
      }
      ++pos_;
    }
  }

  // `<...>` after `template`, read for the parameters' names (the last identifier before a
  // top-level ',' or '=': `typename T`, `int N = sizeof(T)`). Default arguments in it must not
  // read as a variable's initializer.
  std::vector<std::string> read_template_parameters() {
    std::vector<std::string> names;
    if (!at("<")) return names;
    int depth = 0;
    std::string last_identifier;
    bool in_default = false;
    auto flush = [&]() {
      names.push_back(last_identifier);
      last_identifier.clear();
      in_default = false;
    };
    while (pos_ < t_.size()) {
      if (at("(") || at("[") || at("{")) {
        skip_balanced();
        continue;
      }
      if (at("<")) ++depth;
      if (at(">") && --depth == 0) {
        ++pos_;
        if (!last_identifier.empty()) flush();
        return names;
      }
      if (depth == 1 && at(",")) {
        flush();
      } else if (depth == 1 && at("=")) {
        in_default = true;
      } else if (depth == 1 && !in_default && t_[pos_].kind == Token::Kind::kIdent) {
        last_identifier = t_[pos_].text;
      }
      ++pos_;
    }
    return names;
  }

  bool is_extern_c(size_t start) const {
    return start + 1 < t_.size() && t_[start].kind == Token::Kind::kIdent &&
           t_[start].text == "extern" && t_[start + 1].kind == Token::Kind::kString &&
           t_[start + 1].text == "C";
  }

  bool opens_transparent_scope(size_t start) const {
    // extern "C" {   |   namespace [name] {   |   inline namespace name {
    size_t n = pos_ - start;
    if (n == 2 && t_[start].text == "extern" && t_[start + 1].kind == Token::Kind::kString) {
      return true;
    }
    for (size_t i = start; i < pos_; ++i) {
      if (t_[i].kind == Token::Kind::kIdent && t_[i].text == "namespace") return true;
    }
    return false;
  }

  void skip_to_statement_end() {
    while (pos_ < t_.size() && !at(";")) {
      if (at("(") || at("[") || at("{")) {
        skip_balanced();
      } else {
        ++pos_;
      }
    }
    if (pos_ < t_.size()) ++pos_;
  }

  // pos_ is at the '(' after a function's name; `start` is the statement's first token.
  void parse_function(size_t start, std::vector<KernelDeclaration>& out) {
    KernelDeclaration decl;
    decl.name = t_[pos_ - 1].text;
    bool is_global = false;
    for (size_t i = start; i + 1 < pos_; ++i) {
      if (t_[i].kind != Token::Kind::kIdent) continue;
      if (t_[i].text == "__global__") is_global = true;
      if (t_[i].text == "template") decl.is_template = true;
      if (t_[i].text == "typedef") return skip_to_statement_end();
    }
    if (decl.is_template) decl.template_params = template_params_;
    decl.c_linkage =
        is_extern_c(start) ||
        std::find(extern_c_scopes_.begin(), extern_c_scopes_.end(), true) != extern_c_scopes_.end();
    // `a::b(` is a qualified call or member definition, not a kernel.
    bool qualified = pos_ >= start + 2 && at_index(pos_ - 2, "::");
    size_t open = pos_;
    skip_balanced();
    size_t close = pos_ - 1;
    decl.params = parse_params(open + 1, close);
    // Trailing qualifiers, then ';' (a declaration) or '{' (a definition). A word that starts
    // a declaration means the parentheses were a macro invocation without a ';' after it
    // (`DECLARE_KERNEL(name, expr)`): not a function, and the next statement starts there.
    while (pos_ < t_.size() && !at(";") && !at("{")) {
      if (t_[pos_].kind == Token::Kind::kIdent && starts_declaration(t_[pos_].text)) return;
      if (at("(") || at("[")) {
        skip_balanced();
      } else {
        ++pos_;
      }
    }
    if (at("{")) {
      decl.is_definition = true;
      skip_balanced();
    } else if (pos_ < t_.size()) {
      ++pos_;
    }
    if (qualified || (require_global_ && !is_global)) return;
    out.push_back(std::move(decl));
  }

  bool at_index(size_t index, std::string_view text) const {
    return index < t_.size() && t_[index].kind == Token::Kind::kPunct && t_[index].text == text;
  }

  std::vector<DeclaredParam> parse_params(size_t begin, size_t end) const {
    std::vector<DeclaredParam> params;
    std::vector<const Token*> current;
    int depth = 0;
    auto flush = [&]() {
      if (!current.empty()) params.push_back(parse_param(current));
      current.clear();
    };
    for (size_t i = begin; i < end; ++i) {
      const Token& tok = t_[i];
      if (tok.kind == Token::Kind::kPunct) {
        if (tok.text == "(" || tok.text == "[" || tok.text == "{" || tok.text == "<") ++depth;
        if (tok.text == ")" || tok.text == "]" || tok.text == "}" || tok.text == ">") --depth;
        if (tok.text == "," && depth == 0) {
          flush();
          continue;
        }
      }
      current.push_back(&tok);
    }
    flush();
    // `f(void)` has no parameters.
    if (params.size() == 1 && params[0].name.empty() && params[0].c_type == "void") params.clear();
    return params;
  }

  static DeclaredParam parse_param(const std::vector<const Token*>& tokens) {
    std::vector<std::string> words;  // the type, word by word; '*' and '&' as their own words
    size_t array_dims = 0;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const Token& tok = *tokens[i];
      if (tok.kind == Token::Kind::kIdent && is_dropped_qualifier(tok.text)) continue;
      if (tok.kind == Token::Kind::kIdent && is_attribute_call(tok.text)) {
        // __attribute__((...)) and friends inside a parameter: skip the parenthesized part.
        int depth = 0;
        while (i + 1 < tokens.size()) {
          const std::string& next = tokens[i + 1]->text;
          if (next == "(") ++depth;
          if (next == ")") --depth;
          ++i;
          if (depth == 0) break;
        }
        continue;
      }
      if (tok.kind == Token::Kind::kPunct && tok.text == "[") {
        ++array_dims;  // `float A[]` and `float A[4]` are pointers
        while (i < tokens.size() && tokens[i]->text != "]") ++i;
        continue;
      }
      if (tok.kind == Token::Kind::kPunct && tok.text == "=") break;  // a default value
      words.push_back(tok.text);
    }
    DeclaredParam param;
    // The name is the last identifier, unless it is part of the type (`int`, `CUtensorMap`).
    // `const CUtensorMap` is an unnamed parameter: what precedes a name must hold a type.
    bool type_before =
        std::any_of(words.begin(), words.end() - (words.empty() ? 0 : 1),
                    [](const std::string& w) { return w != "const" && w != "volatile"; });
    if (words.size() >= 2 && type_before && is_identifier_start(words.back()[0]) &&
        !is_type_word(words.back())) {
      param.name = words.back();
      words.pop_back();
    }
    for (size_t k = 0; k < array_dims; ++k) words.push_back("*");
    for (const std::string& w : words) {
      bool glue = w == "*" || w == "&" || w == "::" ||
                  (!param.c_type.empty() && param.c_type.back() == ':');
      if (!param.c_type.empty() && !glue) param.c_type += ' ';
      param.c_type += w;
    }
    return param;
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
  bool require_global_;
  std::vector<bool> extern_c_scopes_;         // the open namespace / extern "C" blocks
  std::vector<std::string> template_params_;  // of the statement being parsed
};

// ---------------------------------------------------------------------------------------------
// Types

struct ParamType {
  KernelArg::Kind kind;
  uint32_t bytes;
  DataType dtype;  // for integers: the symbol type this parameter implies
};

// `c_type`'s words, single-spaced, without those in `dropped`.
std::string without_words(std::string_view c_type,
                          std::initializer_list<std::string_view> dropped) {
  std::string out;
  std::string word;
  std::string text(c_type);
  text += ' ';
  for (char c : text) {
    if (c != ' ') {
      word += c;
      continue;
    }
    if (!word.empty() && std::find(dropped.begin(), dropped.end(), word) == dropped.end()) {
      if (!out.empty()) out += ' ';
      out += word;
    }
    word.clear();
  }
  return out;
}

std::optional<ParamType> classify(std::string_view c_type) {
  if (c_type.find('*') != std::string_view::npos) {
    return ParamType{KernelArg::Kind::kPointer, 8, DataType{TypeCode::kHandle, 64, 1}};
  }
  if (c_type.find('&') != std::string_view::npos) return std::nullopt;
  // Drop cv-qualifiers: `const int n` passes like `int n`.
  const std::string base = without_words(c_type, {"const", "volatile"});
  using K = KernelArg::Kind;
  auto integer = [](bool is_signed, uint32_t bytes) {
    return ParamType{
        is_signed ? K::kInt : K::kUInt, bytes,
        DataType{is_signed ? TypeCode::kInt : TypeCode::kUInt, static_cast<uint8_t>(bytes * 8), 1}};
  };
  static const std::pair<std::string_view, std::pair<bool, uint32_t>> kIntegers[] = {
      {"int", {true, 4}},
      {"signed", {true, 4}},
      {"signed int", {true, 4}},
      {"int32_t", {true, 4}},
      {"unsigned", {false, 4}},
      {"unsigned int", {false, 4}},
      {"uint32_t", {false, 4}},
      {"long long", {true, 8}},
      {"long long int", {true, 8}},
      {"signed long long", {true, 8}},
      {"long", {true, 8}},  // LP64: every platform tilejit targets
      {"long int", {true, 8}},
      {"int64_t", {true, 8}},
      {"ptrdiff_t", {true, 8}},
      {"ssize_t", {true, 8}},
      {"unsigned long long", {false, 8}},
      {"unsigned long long int", {false, 8}},
      {"unsigned long", {false, 8}},
      {"uint64_t", {false, 8}},
      {"size_t", {false, 8}},
      {"short", {true, 2}},
      {"short int", {true, 2}},
      {"int16_t", {true, 2}},
      {"unsigned short", {false, 2}},
      {"uint16_t", {false, 2}},
      {"char", {true, 1}},
      {"signed char", {true, 1}},
      {"int8_t", {true, 1}},
      {"unsigned char", {false, 1}},
      {"uint8_t", {false, 1}},
  };
  for (const auto& [name, info] : kIntegers) {
    if (base == name || base == "std::" + std::string(name))
      return integer(info.first, info.second);
  }
  if (base == "float") return ParamType{K::kFloat, 4, DataType{TypeCode::kFloat, 32, 1}};
  if (base == "double") return ParamType{K::kFloat, 8, DataType{TypeCode::kFloat, 64, 1}};
  if (base == "half" || base == "__half" || base == "_Float16") {
    return ParamType{K::kFloat, 2, DataType{TypeCode::kFloat, 16, 1}};
  }
  if (base == "__nv_bfloat16" || base == "bfloat16_t" || base == "__bf16" ||
      base == "hip_bfloat16") {
    return ParamType{K::kFloat, 2, DataType{TypeCode::kBFloat, 16, 1}};
  }
  if (base == "bool" || base == "_Bool") {
    return ParamType{K::kBool, 1, DataType{TypeCode::kBool, 8, 1}};
  }
  if (base == "CUtensorMap" || base == "CUtensorMap_st") {
    return ParamType{K::kTmaDescriptor, 64, DataType{TypeCode::kHandle, 64, 1}};
  }
  return std::nullopt;
}

std::string available_names(const Program& program) {
  std::vector<std::string> names;
  for (const KernelParam& p : program.params) names.push_back(p.name);
  for (const std::string& v : program.shape_variables()) {
    if (program.find_param(v) == nullptr) names.push_back(v);
  }
  for (const TmaDescriptor& d : program.tma_descriptors) names.push_back(d.name);
  if (names.empty()) return "none";
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string_view kind_name(KernelArg::Kind kind) {
  switch (kind) {
    case KernelArg::Kind::kPointer:
      return "a pointer";
    case KernelArg::Kind::kInt:
      return "a signed integer";
    case KernelArg::Kind::kUInt:
      return "an unsigned integer";
    case KernelArg::Kind::kFloat:
      return "a floating-point value";
    case KernelArg::Kind::kBool:
      return "a bool";
    case KernelArg::Kind::kTmaDescriptor:
      return "a CUtensorMap";
    case KernelArg::Kind::kStruct:
      return "a struct";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Struct scalars

// A field as a struct definition in the source declares it.
struct DeclaredField {
  std::string name;
  DataType dtype;
  uint32_t count = 1;
};

// The CUDA vector and complex types a kernel takes by value, and their sizes: float2 and
// cuComplex are 8 bytes whatever the fields are called.
std::optional<uint32_t> builtin_struct_bytes(std::string_view type) {
  static const std::pair<std::string_view, uint32_t> kTypes[] = {{"float2", 8},
                                                                 {"float3", 12},
                                                                 {"float4", 16},
                                                                 {"double2", 16},
                                                                 {"int2", 8},
                                                                 {"int3", 12},
                                                                 {"int4", 16},
                                                                 {"uint2", 8},
                                                                 {"uint3", 12},
                                                                 {"uint4", 16},
                                                                 {"longlong2", 16},
                                                                 {"ulonglong2", 16},
                                                                 {"char2", 2},
                                                                 {"uchar2", 2},
                                                                 {"char4", 4},
                                                                 {"uchar4", 4},
                                                                 {"short2", 4},
                                                                 {"ushort2", 4},
                                                                 {"short4", 8},
                                                                 {"ushort4", 8},
                                                                 {"cuComplex", 8},
                                                                 {"cuFloatComplex", 8},
                                                                 {"cuDoubleComplex", 16},
                                                                 {"dim3", 12}};
  for (const auto& [name, bytes] : kTypes) {
    if (type == name) return bytes;
  }
  return std::nullopt;
}

// The type name of a by-value struct parameter: `const struct Params` -> `Params`.
std::string struct_type_name(std::string_view c_type) {
  return without_words(c_type, {"const", "volatile", "struct"});
}

// The fields of one declarator list in a struct body: `float x, y[2]` (tokens without the
// ';'). nullopt for what this reader does not follow (bit-fields, nested types, functions).
std::optional<std::vector<DeclaredField>> parse_fields(const std::vector<Token>& tokens) {
  std::vector<DeclaredField> out;
  std::vector<std::string> type_words;
  std::vector<std::string> words;
  uint32_t count = 1;
  bool first = true;
  auto flush = [&]() -> bool {
    if (words.empty()) return false;
    DeclaredField field;
    field.name = words.back();
    if (!is_identifier_start(field.name[0]) || is_type_word(field.name)) return false;
    words.pop_back();
    if (first) type_words = words;
    std::vector<std::string> type = type_words;
    if (!first) type.insert(type.end(), words.begin(), words.end());  // `*` of `float *p, *q`
    std::string text;
    for (const std::string& w : type) text += (text.empty() || w == "*" ? "" : " ") + w;
    const std::optional<ParamType> classified = classify(text);
    if (!classified || classified->kind == KernelArg::Kind::kTmaDescriptor) return false;
    field.dtype = classified->dtype;
    field.count = count;
    out.push_back(std::move(field));
    words.clear();
    count = 1;
    first = false;
    return true;
  };
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Token& tok = tokens[i];
    if (tok.kind == Token::Kind::kPunct) {
      if (tok.text == ",") {
        if (!flush()) return std::nullopt;
        continue;
      }
      if (tok.text == "[") {
        if (i + 2 >= tokens.size() || tokens[i + 1].kind != Token::Kind::kNumber ||
            tokens[i + 2].text != "]") {
          return std::nullopt;
        }
        const std::string& digits = tokens[i + 1].text;
        if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 6) {
          return std::nullopt;
        }
        count *= static_cast<uint32_t>(std::stoul(digits));
        i += 2;
        continue;
      }
      if (tok.text != "*" && tok.text != "::") return std::nullopt;
    } else if (tok.kind != Token::Kind::kIdent) {
      return std::nullopt;
    }
    if (tok.kind == Token::Kind::kIdent && is_dropped_qualifier(tok.text)) continue;
    words.push_back(tok.text);
  }
  if (!flush()) return std::nullopt;
  return out;
}

// The fields of `struct NAME { ... }` or `typedef struct [tag] { ... } NAME;` in the source,
// when its body holds only plain fields; nullopt when there is no such definition (or one
// this reader does not follow: the description is then trusted).
std::optional<std::vector<DeclaredField>> find_struct_fields(std::string_view source,
                                                             std::string_view name) {
  const std::vector<Token> t = Lexer(source).run();
  auto is = [&](size_t i, std::string_view text) {
    return i < t.size() && t[i].kind != Token::Kind::kString && t[i].text == text;
  };
  auto body_end = [&](size_t open) {
    int depth = 0;
    for (size_t i = open; i < t.size(); ++i) {
      if (is(i, "{")) ++depth;
      if (is(i, "}") && --depth == 0) return i;
    }
    return t.size();
  };
  for (size_t i = 0; i + 2 < t.size(); ++i) {
    size_t open = 0;
    if (is(i, "struct") && is(i + 1, name) && is(i + 2, "{")) {
      open = i + 2;
    } else if (is(i, "typedef") && is(i + 1, "struct")) {
      const size_t brace = is(i + 2, "{") ? i + 2 : i + 3;
      if (!is(brace, "{")) continue;
      const size_t close = body_end(brace);
      if (!is(close + 1, name)) continue;
      open = brace;
    } else {
      continue;
    }
    const size_t close = body_end(open);
    if (close >= t.size()) return std::nullopt;
    std::vector<DeclaredField> fields;
    std::vector<Token> statement;
    for (size_t k = open + 1; k < close; ++k) {
      if (is(k, "{") || is(k, ":") || is(k, "(")) return std::nullopt;
      if (!is(k, ";")) {
        statement.push_back(t[k]);
        continue;
      }
      std::optional<std::vector<DeclaredField>> parsed = parse_fields(statement);
      if (!parsed) return std::nullopt;
      fields.insert(fields.end(), parsed->begin(), parsed->end());
      statement.clear();
    }
    if (!statement.empty()) return std::nullopt;
    return fields;
  }
  return std::nullopt;
}

// A struct param against the kernel parameter that receives it (resolve_kernel_args).
void check_struct_param(const Program& program, const Launch& launch, const KernelParam& param,
                        const DeclaredParam& declared) {
  const StructLayout layout = param.struct_layout();
  auto fail = [&](const std::string& why) {
    throw ProgramError(fmt::format("kernel '{}' parameter '{}' is declared '{}', but {}",
                                   launch.kernel, param.name, declared.c_type, why));
  };
  if (declared.c_type.find_first_of("*&") != std::string::npos) {
    fail(
        fmt::format("the struct parameter '{}' is passed by value: expected the struct type "
                    "itself",
                    param.name));
  }
  if (std::optional<ParamType> scalar = classify(declared.c_type)) {
    fail(fmt::format("that is {}, and '{}' is a struct ({} bytes): expected a struct type",
                     kind_name(scalar->kind), param.name, layout.size));
  }
  const std::string type = struct_type_name(declared.c_type);
  if (std::optional<uint32_t> bytes = builtin_struct_bytes(type)) {
    if (*bytes != layout.size) {
      fail(fmt::format("{} is {} bytes and the fields of '{}' lay out {} bytes", type, *bytes,
                       param.name, layout.size));
    }
    return;
  }
  const std::optional<std::vector<DeclaredField>> fields = find_struct_fields(program.source, type);
  if (!fields) return;  // defined in a header, or in a way this reader does not follow
  for (size_t f = 0; f < std::max(fields->size(), param.fields.size()); ++f) {
    if (f >= fields->size() || f >= param.fields.size()) {
      fail(
          fmt::format("{} has {} fields and the param '{}' describes {}: expected the same "
                      "fields in the same order",
                      type, fields->size(), param.name, param.fields.size()));
    }
    const DeclaredField& d = (*fields)[f];
    const StructField& s = param.fields[f];
    if (d.dtype != s.dtype || d.count != s.count) {
      auto text = [](const DataType& t, uint32_t n) {
        return n == 1 ? t.str() : fmt::format("{}[{}]", t.str(), n);
      };
      fail(fmt::format("its field {} ('{}') is {} in the source and field '{}' of the param is {}",
                       f, d.name, text(d.dtype, d.count), s.name, text(s.dtype, s.count)));
    }
  }
}

}  // namespace

std::vector<KernelDeclaration> parse_kernel_declarations(std::string_view source,
                                                         bool require_global) {
  return DeclarationParser(Lexer(source).run(), require_global).run();
}

std::optional<KernelName> parse_kernel_name(std::string_view text) {
  KernelName name;
  size_t open = text.find('<');
  std::string_view path = text.substr(0, open);
  // `a::b::k`: identifiers joined by `::`, with an optional leading `::`.
  if (path.starts_with("::")) path.remove_prefix(2);
  for (;;) {
    size_t sep = path.find("::");
    std::string_view part = path.substr(0, sep);
    if (!is_c_identifier(part)) return std::nullopt;
    if (sep == std::string_view::npos) {
      name.base = std::string(part);
      break;
    }
    name.qualifiers.emplace_back(part);
    path.remove_prefix(sep + 2);
  }
  if (open == std::string_view::npos) return name;
  name.is_template_id = true;
  std::string_view args = text.substr(open);
  if (args.size() < 2 || args.back() != '>') return std::nullopt;
  args = args.substr(1, args.size() - 2);
  if (args.find_first_of("\"'\\%;{}\n\r") != std::string_view::npos) return std::nullopt;
  int depth = 0;
  std::string current;
  auto flush = [&]() {
    size_t first = current.find_first_not_of(" \t");
    size_t last = current.find_last_not_of(" \t");
    name.template_args.push_back(
        first == std::string::npos ? std::string() : current.substr(first, last - first + 1));
    current.clear();
  };
  for (char c : args) {
    if (c == '<' || c == '(' || c == '[') ++depth;
    if (c == '>' || c == ')' || c == ']') --depth;
    if (depth < 0) return std::nullopt;
    if (c == ',' && depth == 0) {
      flush();
      continue;
    }
    current += c;
  }
  if (depth != 0) return std::nullopt;
  flush();
  if (name.template_args.size() == 1 && name.template_args[0].empty()) name.template_args.clear();
  for (const std::string& arg : name.template_args) {
    if (arg.empty()) return std::nullopt;
  }
  return name;
}

namespace {

// `T*` with T = float is `float*`: each word of `c_type` that names a template parameter is
// replaced by its argument.
std::string substitute(const std::string& c_type, const std::vector<std::string>& names,
                       const std::vector<std::string>& args) {
  std::string out;
  size_t i = 0;
  while (i < c_type.size()) {
    if (!is_identifier_start(c_type[i])) {
      out += c_type[i++];
      continue;
    }
    size_t end = i;
    while (end < c_type.size() && is_identifier_char(c_type[end])) ++end;
    std::string word = c_type.substr(i, end - i);
    auto found = std::find(names.begin(), names.end(), word);
    size_t index = static_cast<size_t>(found - names.begin());
    out += found != names.end() && index < args.size() ? args[index] : word;
    i = end;
  }
  return out;
}

}  // namespace

KernelDeclaration parse_kernel_declaration(std::string_view source, std::string_view kernel_name,
                                           bool require_global) {
  std::optional<KernelName> name = parse_kernel_name(kernel_name);
  if (!name) {
    throw ProgramError(fmt::format(
        "kernel name '{}' is not a C++ name: expected an identifier, optionally qualified "
        "(ns::k) and with template arguments (k<float, 128>)",
        kernel_name));
  }
  std::vector<KernelDeclaration> all = parse_kernel_declarations(source, require_global);
  const KernelDeclaration* chosen = nullptr;
  for (const KernelDeclaration& d : all) {
    if (d.name != name->base) continue;
    if (d.is_template && !name->is_template_id) {
      throw ProgramError(fmt::format(
          "kernel '{}' is a template: expected the launch to name an instantiation with its "
          "template arguments, e.g. \"{}<float>\" (NVRTC finds its mangled name; nvcc "
          "instantiates it)",
          kernel_name, kernel_name));
    }
    if (!d.is_template && name->is_template_id) {
      throw ProgramError(fmt::format(
          "kernel '{}' names template arguments, but '{}' is not a template: expected the plain "
          "name '{}'",
          kernel_name, d.name, d.name));
    }
    // A definition is preferred: a forward declaration may leave its parameters unnamed.
    if (chosen == nullptr || (d.is_definition && !chosen->is_definition)) chosen = &d;
  }
  if (chosen != nullptr && chosen->is_template) {
    if (name->template_args.size() > chosen->template_params.size()) {
      throw ProgramError(fmt::format(
          "kernel '{}' gives {} template arguments, but '{}' declares {} template parameters",
          kernel_name, name->template_args.size(), chosen->name, chosen->template_params.size()));
    }
    KernelDeclaration instance = *chosen;
    for (DeclaredParam& param : instance.params) {
      param.c_type = substitute(param.c_type, instance.template_params, name->template_args);
    }
    return instance;
  }
  if (chosen == nullptr) {
    std::string found;
    std::set<std::string_view> seen;
    for (const KernelDeclaration& d : all) {
      if (!seen.insert(d.name).second) continue;
      found += (found.empty() ? "" : ", ") + d.name;
    }
    throw ProgramError(fmt::format(
        "kernel '{}' is not declared in the source: expected a {}function named '{}'; the source "
        "declares {}",
        kernel_name, require_global ? "__global__ " : "", kernel_name,
        found.empty() ? "none" : found));
  }
  return *chosen;
}

KernelDeclaration launch_declaration(const Program& program, const Launch& launch) {
  bool require_global = program.language == Language::kCuda || program.language == Language::kHip;
  if (!launch.signature)
    return parse_kernel_declaration(program.source, launch.kernel, require_global);
  std::optional<KernelName> name = parse_kernel_name(launch.kernel);
  std::string declaration = fmt::format("{}void {}({});", require_global ? "__global__ " : "",
                                        name ? name->base : launch.kernel, *launch.signature);
  std::vector<KernelDeclaration> parsed = parse_kernel_declarations(declaration, require_global);
  int depth = 0;
  for (char c : *launch.signature) {
    depth += c == '(' ? 1 : c == ')' ? -1 : 0;
    if (depth < 0 || c == ';' || c == '{' || c == '}') depth = -1000;
  }
  if (parsed.size() != 1 || depth != 0) {
    throw ProgramError(fmt::format(
        "launch of kernel '{}' has the signature \"{}\": expected a C parameter list, e.g. "
        "\"const float* x, float* y, int n\"",
        launch.kernel, *launch.signature));
  }
  return parsed.front();
}

bool needs_lowered_name(const Program& program, const Launch& launch) {
  if (launch.signature) return true;
  KernelDeclaration decl = launch_declaration(program, launch);
  return decl.is_template || !decl.c_linkage || launch.kernel != decl.name;
}

std::vector<KernelArg> resolve_kernel_args(const Program& program, const Launch& launch) {
  KernelDeclaration decl = launch_declaration(program, launch);
  if (launch.args && launch.args->size() != decl.params.size()) {
    throw ProgramError(fmt::format(
        "launch of kernel '{}' lists {} args but the kernel declares {} parameters: expected "
        "one name per parameter",
        launch.kernel, launch.args->size(), decl.params.size()));
  }
  std::set<std::string> symbols;
  for (const std::string& v : program.shape_variables()) symbols.insert(v);

  std::vector<KernelArg> args;
  for (size_t i = 0; i < decl.params.size(); ++i) {
    const DeclaredParam& declared = decl.params[i];
    KernelArg arg;
    arg.name = launch.args ? (*launch.args)[i] : declared.name;
    arg.c_type = declared.c_type;
    if (arg.name.empty()) {
      throw ProgramError(fmt::format(
          "kernel '{}' leaves parameter {} ({}) unnamed: expected a name, or the launch's "
          "\"args\" list",
          launch.kernel, i, declared.c_type));
    }
    if (const KernelParam* p = program.find_param(arg.name); p != nullptr && p->is_struct()) {
      check_struct_param(program, launch, *p, declared);
      arg.source = KernelArg::Source::kParam;
      arg.index = static_cast<int>(p - program.params.data());
      arg.kind = KernelArg::Kind::kStruct;
      arg.bytes = p->struct_layout().size;
      args.push_back(std::move(arg));
      continue;
    }
    std::optional<ParamType> type = classify(declared.c_type);
    if (!type) {
      throw ProgramError(fmt::format(
          "kernel '{}' parameter '{}' has the type '{}': expected a pointer, an integer, a "
          "floating-point type, bool, CUtensorMap, or a struct type for a struct param (one "
          "described by its fields)",
          launch.kernel, arg.name, declared.c_type));
    }
    arg.kind = type->kind;
    arg.bytes = type->bytes;

    // What the name refers to, and which kinds of kernel parameter can receive it.
    std::string_view expected;
    bool fits = false;
    auto tma = std::find_if(program.tma_descriptors.begin(), program.tma_descriptors.end(),
                            [&](const TmaDescriptor& d) { return d.name == arg.name; });
    if (const KernelParam* p = program.find_param(arg.name)) {
      arg.source = KernelArg::Source::kParam;
      arg.index = static_cast<int>(p - program.params.data());
      if (!p->is_scalar() || p->dtype.is_handle()) {
        expected = "a pointer";
        fits = arg.kind == KernelArg::Kind::kPointer;
      } else if (p->dtype.is_float()) {
        expected = "a floating-point type";
        fits = arg.kind == KernelArg::Kind::kFloat;
      } else {
        expected = "an integer or bool type";
        fits = arg.kind == KernelArg::Kind::kInt || arg.kind == KernelArg::Kind::kUInt ||
               arg.kind == KernelArg::Kind::kBool;
      }
    } else if (tma != program.tma_descriptors.end()) {
      arg.source = KernelArg::Source::kTmaDescriptor;
      arg.index = static_cast<int>(tma - program.tma_descriptors.begin());
      expected = "const __grid_constant__ CUtensorMap";
      fits = arg.kind == KernelArg::Kind::kTmaDescriptor;
    } else if (symbols.count(arg.name) != 0) {
      arg.source = KernelArg::Source::kSymbol;
      arg.index = -1;
      expected = "an integer type";
      fits = arg.kind == KernelArg::Kind::kInt || arg.kind == KernelArg::Kind::kUInt;
    } else {
      throw ProgramError(fmt::format(
          "kernel '{}' parameter '{}' matches nothing in program '{}': expected a parameter, a "
          "shape/stride variable or a TMA descriptor name (available: {})",
          launch.kernel, arg.name, program.name, available_names(program)));
    }
    if (!fits) {
      throw ProgramError(fmt::format(
          "kernel '{}' parameter '{}' is declared '{}' ({}), but what it receives needs {}",
          launch.kernel, arg.name, declared.c_type, kind_name(arg.kind), expected));
    }
    args.push_back(std::move(arg));
  }
  return args;
}

namespace {

// Whether the memory a pointer type points at is const: a `const` among the words after the
// last '*' but one (`const float*`, `float const*`, `float* const*`), not after the last '*'
// (`float* const` is a const pointer to writable floats).
bool points_to_const(std::string_view c_type) {
  const size_t last = c_type.rfind('*');
  if (last == std::string_view::npos) return false;
  std::string_view pointee = c_type.substr(0, last);
  const size_t previous = pointee.rfind('*');
  if (previous != std::string_view::npos) pointee.remove_prefix(previous + 1);
  size_t pos = 0;
  while ((pos = pointee.find("const", pos)) != std::string_view::npos) {
    const bool starts = pos == 0 || !is_identifier_char(pointee[pos - 1]);
    const bool ends = pos + 5 == pointee.size() || !is_identifier_char(pointee[pos + 5]);
    if (starts && ends) return true;
    pos += 5;
  }
  return false;
}

}  // namespace

std::vector<std::string> param_write_reasons(const Program& program) {
  std::vector<std::string> reasons(program.params.size());
  for (size_t i = 0; i < program.params.size(); ++i) {
    if (program.params[i].is_scalar() || !program.launches.empty()) continue;
    reasons[i] = "the program has no launches, so its kernels' parameters are not known";
  }
  for (const Launch& launch : program.launches) {
    for (const KernelArg& arg : resolve_kernel_args(program, launch)) {
      if (arg.source != KernelArg::Source::kParam || arg.kind != KernelArg::Kind::kPointer ||
          program.params[arg.index].is_scalar() || points_to_const(arg.c_type) ||
          !reasons[arg.index].empty()) {
        continue;
      }
      reasons[arg.index] = fmt::format("kernel '{}' takes it as '{}', not a pointer to const",
                                       launch.kernel, arg.c_type);
    }
  }
  for (const TmaDescriptor& d : program.tma_descriptors) {
    const KernelParam* p = program.find_param(d.buffer);
    if (p == nullptr || p->is_scalar()) continue;
    std::string& reason = reasons[static_cast<size_t>(p - program.params.data())];
    if (reason.empty()) reason = fmt::format("the TMA descriptor '{}' is built over it", d.name);
  }
  return reasons;
}

DataType symbol_dtype(const Program& program, std::string_view symbol) {
  if (const KernelParam* p = program.find_param(symbol); p != nullptr && p->is_scalar()) {
    return p->dtype;
  }
  std::optional<DataType> found;
  std::string found_in;
  for (const Launch& launch : program.launches) {
    for (const KernelArg& arg : resolve_kernel_args(program, launch)) {
      if (arg.source != KernelArg::Source::kSymbol || arg.name != symbol) continue;
      DataType dtype = classify(arg.c_type)->dtype;
      if (found && *found != dtype) {
        throw ProgramError(fmt::format(
            "symbol '{}' is received as {} by kernel '{}' but as {} by kernel '{}': expected "
            "one integer type for it in every kernel",
            symbol, found->str(), found_in, dtype.str(), launch.kernel));
      }
      found = dtype;
      found_in = launch.kernel;
    }
  }
  return found.value_or(DataType{TypeCode::kInt, 64, 1});
}

}  // namespace tilejit::detail
