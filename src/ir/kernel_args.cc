// Argument resolution: each kernel parameter of a launch matched to a param, a TMA descriptor
// or a symbol, its type classified and checked (struct params against the source's struct);
// which params the kernels may write; the C type of each symbol.
#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <optional>
#include <set>

#include "ir/c_tokens.h"
#include "ir/identifier.h"
#include "ir/signature.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

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
        const std::string_view digits = tokens[i + 1].text;
        if (digits.find_first_not_of("0123456789") != std::string_view::npos || digits.size() > 6) {
          return std::nullopt;
        }
        uint32_t size = 0;  // at most six digits, checked above
        std::from_chars(digits.data(), digits.data() + digits.size(), size);
        count *= size;
        i += 2;
        continue;
      }
      if (tok.text != "*" && tok.text != "::") return std::nullopt;
    } else if (tok.kind != Token::Kind::kIdent) {
      return std::nullopt;
    }
    if (tok.kind == Token::Kind::kIdent && is_dropped_qualifier(tok.text)) continue;
    words.emplace_back(tok.text);
  }
  if (!flush()) return std::nullopt;
  return out;
}

// The fields of `struct NAME { ... }` or `typedef struct [tag] { ... } NAME;` in the source,
// when its body holds only plain fields; nullopt when there is no such definition (or one
// this reader does not follow: the description is then trusted).
std::optional<std::vector<DeclaredField>> find_struct_fields(std::string_view source,
                                                             std::string_view name) {
  const std::vector<Token> t = tokenize(source);
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
