#include "tilejit/dtype.h"

#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <iterator>

#include "tilejit/errors.h"

namespace tilejit {
namespace {

struct NamedType {
  std::string_view name;
  TypeCode code;
  uint8_t bits;
};

// Every scalar type tilejit knows, by the names TileLang and TVM print. The first entry for
// a (code, bits) pair is the canonical spelling that str() prints; later ones are aliases.
constexpr NamedType kNamedTypes[] = {
    {"int8", TypeCode::kInt, 8},
    {"int16", TypeCode::kInt, 16},
    {"int32", TypeCode::kInt, 32},
    {"int64", TypeCode::kInt, 64},
    {"uint8", TypeCode::kUInt, 8},
    {"uint16", TypeCode::kUInt, 16},
    {"uint32", TypeCode::kUInt, 32},
    {"uint64", TypeCode::kUInt, 64},
    {"float16", TypeCode::kFloat, 16},
    {"float32", TypeCode::kFloat, 32},
    {"float64", TypeCode::kFloat, 64},
    {"bfloat16", TypeCode::kBFloat, 16},
    {"float8_e4m3", TypeCode::kFloat8E4M3, 8},
    {"float8_e4m3fn", TypeCode::kFloat8E4M3, 8},
    {"float8_e5m2", TypeCode::kFloat8E5M2, 8},
    {"float4_e2m1", TypeCode::kFloat4E2M1, 4},
    {"float4_e2m1fn", TypeCode::kFloat4E2M1, 4},
    {"bool", TypeCode::kBool, 8},
    {"handle", TypeCode::kHandle, 64},
    {"complex64", TypeCode::kComplex, 64},
    {"complex128", TypeCode::kComplex, 128},
    // Not an element type: a struct scalar's bytes are described by its fields.
    {"struct", TypeCode::kStruct, 8},
};

const NamedType* find_named(TypeCode code, uint8_t bits) {
  for (const NamedType& t : kNamedTypes) {
    if (t.code == code && t.bits == bits) return &t;
  }
  return nullptr;
}

std::string known_names() {
  std::string out;
  for (const NamedType& t : kNamedTypes) {
    if (!out.empty()) out += ", ";
    out += t.name;
  }
  return out;
}

}  // namespace

DataType DataType::parse(std::string_view text) {
  std::string_view base = text;
  uint16_t lanes = 1;
  for (const NamedType& t : kNamedTypes) {
    if (t.name == text) return DataType{t.code, t.bits, 1};
  }
  // A vector type is "<scalar>x<lanes>"; the lanes follow the last 'x' ("complex64x2").
  size_t x = text.rfind('x');
  auto known = [](std::string_view name) {
    return std::any_of(std::begin(kNamedTypes), std::end(kNamedTypes),
                       [&](const NamedType& t) { return t.name == name; });
  };
  if (x != std::string_view::npos && known(text.substr(0, x))) {
    base = text.substr(0, x);
    std::string_view digits = text.substr(x + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value < 1 ||
        value > 65535) {
      throw ProgramError(fmt::format(
          "invalid dtype '{}': the lanes suffix 'xN' needs an integer N in 1..65535", text));
    }
    lanes = static_cast<uint16_t>(value);
  }
  for (const NamedType& t : kNamedTypes) {
    if (t.name == base) return DataType{t.code, t.bits, lanes};
  }
  throw ProgramError(
      fmt::format("unknown dtype '{}': expected one of {} (optionally with a "
                  "lanes suffix such as float16x2)",
                  text, known_names()));
}

std::string DataType::str() const {
  const NamedType* named = find_named(code, bits);
  std::string out = named ? std::string(named->name)
                          : fmt::format("<code {} bits {}>", static_cast<int>(code), bits);
  if (lanes != 1) out += fmt::format("x{}", lanes);
  return out;
}

dlpack::DLDataType DataType::to_dlpack() const {
  uint8_t dl_code = dlpack::kDLInt;
  switch (code) {
    case TypeCode::kInt:
      dl_code = dlpack::kDLInt;
      break;
    case TypeCode::kUInt:
      dl_code = dlpack::kDLUInt;
      break;
    case TypeCode::kFloat:
      dl_code = dlpack::kDLFloat;
      break;
    case TypeCode::kBFloat:
      dl_code = dlpack::kDLBfloat;
      break;
    case TypeCode::kFloat8E4M3:
      dl_code = dlpack::kDLFloat8_e4m3fn;
      break;
    case TypeCode::kFloat8E5M2:
      dl_code = dlpack::kDLFloat8_e5m2;
      break;
    case TypeCode::kFloat4E2M1:
      dl_code = dlpack::kDLFloat4_e2m1fn;
      break;
    case TypeCode::kBool:
      dl_code = dlpack::kDLBool;
      break;
    case TypeCode::kHandle:
      dl_code = dlpack::kDLOpaqueHandle;
      break;
    case TypeCode::kComplex:
      dl_code = dlpack::kDLComplex;
      break;
    case TypeCode::kStruct:
      dl_code = dlpack::kDLUInt;  // raw bytes: no framework has a struct dtype
      break;
  }
  return {dl_code, bits, lanes};
}

DataType DataType::from_dlpack(dlpack::DLDataType dl) {
  TypeCode code = TypeCode::kInt;
  bool known = true;
  switch (dl.code) {
    case dlpack::kDLInt:
      code = TypeCode::kInt;
      break;
    case dlpack::kDLUInt:
      code = TypeCode::kUInt;
      break;
    case dlpack::kDLFloat:
      code = TypeCode::kFloat;
      break;
    case dlpack::kDLBfloat:
      code = TypeCode::kBFloat;
      break;
    case dlpack::kDLFloat8_e4m3fn:
      code = TypeCode::kFloat8E4M3;
      break;
    case dlpack::kDLFloat8_e5m2:
      code = TypeCode::kFloat8E5M2;
      break;
    case dlpack::kDLFloat4_e2m1fn:
      code = TypeCode::kFloat4E2M1;
      break;
    case dlpack::kDLBool:
      code = TypeCode::kBool;
      break;
    case dlpack::kDLOpaqueHandle:
      code = TypeCode::kHandle;
      break;
    case dlpack::kDLComplex:
      code = TypeCode::kComplex;
      break;
    default:
      known = false;
  }
  if (!known || dl.lanes == 0 || find_named(code, dl.bits) == nullptr) {
    throw ArgumentError(
        fmt::format("unsupported DLPack dtype (code {}, bits {}, lanes {}): tilejit supports {}",
                    dl.code, dl.bits, dl.lanes, known_names()));
  }
  return DataType{code, dl.bits, dl.lanes};
}

std::string_view DataType::c_type() const {
  switch (code) {
    case TypeCode::kInt:
      switch (bits) {
        case 8:
          return "int8_t";
        case 16:
          return "int16_t";
        case 32:
          return "int32_t";
        default:
          return "int64_t";
      }
    case TypeCode::kUInt:
      switch (bits) {
        case 8:
          return "uint8_t";
        case 16:
          return "uint16_t";
        case 32:
          return "uint32_t";
        default:
          return "uint64_t";
      }
    case TypeCode::kFloat:
      switch (bits) {
        case 16:
          return "uint16_t";  // host code moves half values as raw bits
        case 32:
          return "float";
        default:
          return "double";
      }
    case TypeCode::kBFloat:
      return "uint16_t";
    case TypeCode::kFloat8E4M3:
    case TypeCode::kFloat8E5M2:
    case TypeCode::kFloat4E2M1:
      return "uint8_t";
    case TypeCode::kBool:
      return "bool";
    case TypeCode::kHandle:
      return "void*";
    case TypeCode::kComplex:
      return "void";  // tensors only (validation refuses complex scalars): void* in host code
    case TypeCode::kStruct:
      return "void";  // each struct parameter has its own type in generated code
  }
  return "void*";
}

int64_t DataType::storage_bytes(int64_t count) const {
  int64_t total_bits = 0;
  if (count < 0 || __builtin_mul_overflow(count, int64_t{lanes} * bits, &total_bits) ||
      total_bits > INT64_MAX - 7) {
    throw ArgumentError(
        fmt::format("cannot size {} elements of {}: negative or overflows int64", count, str()));
  }
  return (total_bits + 7) / 8;
}

}  // namespace tilejit
