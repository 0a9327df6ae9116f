#include "ir/c_tokens.h"

#include <set>

#include "ir/identifier.h"

namespace tilejit::detail {
namespace {

class Lexer {
 public:
  explicit Lexer(std::string_view source) : s_(source) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    out.reserve(s_.size() / 4);  // TileLang's kernels run at about one token per 3-4 bytes
    bool line_start = true;      // only whitespace since the last newline
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
        out.push_back({Token::Kind::kIdent, s_.substr(start, pos_ - start)});
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
        out.push_back({Token::Kind::kNumber, s_.substr(start, pos_ - start)});
        continue;
      }
      if (c == '"' || c == '\'') {
        std::string_view text = read_quoted(c);
        if (c == '"') out.push_back({Token::Kind::kString, text});
        continue;
      }
      if (starts_with("::")) {
        out.push_back({Token::Kind::kPunct, s_.substr(pos_, 2)});
        pos_ += 2;
        continue;
      }
      out.push_back({Token::Kind::kPunct, s_.substr(pos_, 1)});
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
  std::string_view read_quoted(char quote) {
    size_t start = ++pos_;
    while (pos_ < s_.size() && s_[pos_] != quote && s_[pos_] != '\n') {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      ++pos_;
    }
    std::string_view text = s_.substr(start, pos_ - start);
    if (pos_ < s_.size() && s_[pos_] == quote) ++pos_;
    return text;
  }

  // Length of a raw-string prefix (R", u8R", LR"...) at pos_, or 0.
  size_t raw_string_prefix_length() const {
    const char c = s_[pos_];
    if (c != 'R' && c != 'u' && c != 'U' && c != 'L') return 0;  // most tokens: one compare
    for (std::string_view p : {"R\"", "u8R\"", "uR\"", "UR\"", "LR\""}) {
      if (starts_with(p) && (pos_ == 0 || !is_identifier_char(s_[pos_ - 1]))) return p.size();
    }
    return 0;
  }

  std::string_view read_raw_string() {
    pos_ += raw_string_prefix_length();
    size_t open = s_.find('(', pos_);
    if (open == std::string_view::npos) {
      pos_ = s_.size();
      return {};
    }
    std::string closing = ")" + std::string(s_.substr(pos_, open - pos_)) + "\"";
    size_t end = s_.find(closing, open + 1);
    std::string_view text =
        s_.substr(open + 1, (end == std::string_view::npos ? s_.size() : end) - open - 1);
    pos_ = end == std::string_view::npos ? s_.size() : end + closing.size();
    return text;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) {
  return Lexer(source).run();
}

bool is_attribute_call(std::string_view name) {
  static const std::set<std::string_view> kAttributes = {
      "__launch_bounds__", "__attribute__", "__declspec",       "alignas",      "__align__",
      "decltype",          "__maxnreg__",   "__cluster_dims__", "__noinline__", "noexcept",
      "__forceinline__",   "throw",         "sizeof",           "alignof"};
  return kAttributes.count(name) != 0;
}

bool is_dropped_qualifier(std::string_view word) {
  return word == "__restrict__" || word == "__restrict" || word == "restrict" ||
         word == "__grid_constant__" || word == "register";
}

bool is_type_word(std::string_view word) {
  static const std::set<std::string_view> kWords = {
      "void", "char",  "short",  "int",      "long",  "float",   "double",
      "bool", "_Bool", "signed", "unsigned", "const", "volatile"};
  return kWords.count(word) != 0;
}

}  // namespace tilejit::detail
