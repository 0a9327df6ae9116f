// The declaration reader: every function declaration at file, namespace or `extern "C"` scope,
// kernel names as C++ spells them, and the declaration a launch's arguments are read from.
#include <fmt/format.h>
#include <algorithm>
#include <optional>
#include <set>

#include "ir/c_tokens.h"
#include "ir/identifier.h"
#include "ir/signature.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

// Words that cannot follow a function declarator's ')' but begin a declaration.
bool starts_declaration(std::string_view word) {
  static const std::set<std::string_view> kWords = {
      "extern",         "__global__", "__device__", "__host__", "template", "namespace", "typedef",
      "struct",         "class",      "union",      "enum",     "static",   "inline",    "using",
      "void",           "int",        "float",      "double",   "char",     "unsigned",  "signed",
      "__forceinline__"};
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
          const std::string_view next = tokens[i + 1]->text;
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
      words.emplace_back(tok.text);
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

}  // namespace

std::vector<KernelDeclaration> parse_kernel_declarations(std::string_view source,
                                                         bool require_global) {
  // Validating a Program, building its Binder and its launch plan each read the declarations
  // of the same source, one after another on one thread: the last result is kept per thread,
  // so a kernel's source (TileLang's run to thousands of tokens) is tokenized once, not three
  // times, on every cache hit.
  struct LastParse {
    std::string source;
    bool require_global = false;
    std::vector<KernelDeclaration> declarations;
  };
  thread_local std::optional<LastParse> last;
  if (last && last->require_global == require_global && last->source == source) {
    return last->declarations;
  }
  std::vector<KernelDeclaration> declarations =
      DeclarationParser(tokenize(source), require_global).run();
  last = LastParse{std::string(source), require_global, declarations};
  return declarations;
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

}  // namespace tilejit::detail
