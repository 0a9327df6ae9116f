// tilejit/dtype.h — element types of kernel parameters.
//
//   auto t = tilejit::DataType::parse("float8_e4m3");   // also "float16", "int32", "bool",
//   "handle" t.is_float8();          // true t.to_dlpack();          // {kDLFloat8_e4m3fn, 8, 1},
//   what torch.float8_e4m3fn exports t.str();                // "float8_e4m3" (parse(str()) is the
//   identity)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tilejit/dlpack.h"

namespace tilejit {

enum class TypeCode : uint8_t {
  kInt,
  kUInt,
  kFloat,
  kBFloat,
  kFloat8E4M3,  // OCP e4m3 "fn" (finite, no infinities): torch.float8_e4m3fn
  kFloat8E5M2,
  kFloat4E2M1,  // OCP e2m1 "fn"; two values per byte in memory
  kBool,
  kHandle,   // an opaque pointer (void*)
  kComplex,  // complex64 / complex128: real and imaginary float32 / float64, interleaved
  kStruct,   // a struct scalar passed by value, laid out by KernelParam::fields
};

struct DataType {
  TypeCode code = TypeCode::kInt;
  uint8_t bits = 32;
  uint16_t lanes = 1;

  // Names as TileLang/TVM write them: int8..int64, uint8..uint64, float16/32/64, bfloat16,
  // float8_e4m3 (alias float8_e4m3fn), float8_e5m2, float4_e2m1 (alias float4_e2m1fn), bool,
  // handle, complex64, complex128, struct (a scalar described by its fields); a vector type
  // appends "xN" (float16x2). Throws ProgramError
  // naming the text.
  static DataType parse(std::string_view text);
  // Maps a DLPack dtype back; throws ArgumentError for codes tilejit does not support.
  static DataType from_dlpack(dlpack::DLDataType dl);

  std::string str() const;
  dlpack::DLDataType to_dlpack() const;
  // The C/C++ spelling used in generated host code (int32_t, float, uint16_t for the 16-bit
  // floats, void* for handle, void for complex: complex data only travels behind a pointer;
  // void for struct: generated code names each struct parameter's own type).
  std::string_view c_type() const;
  // Bytes that `count` elements occupy in memory (lanes included; float4 packs two per byte,
  // bool takes one byte).
  int64_t storage_bytes(int64_t count) const;

  bool is_int() const { return code == TypeCode::kInt; }
  bool is_unsigned() const { return code == TypeCode::kUInt; }
  bool is_integer() const { return is_int() || is_unsigned(); }
  bool is_float() const {
    return code == TypeCode::kFloat || code == TypeCode::kBFloat || is_float8() || is_float4();
  }
  bool is_bfloat16() const { return code == TypeCode::kBFloat && bits == 16; }
  bool is_float8() const { return code == TypeCode::kFloat8E4M3 || code == TypeCode::kFloat8E5M2; }
  bool is_float4() const { return code == TypeCode::kFloat4E2M1; }
  bool is_boolean() const { return code == TypeCode::kBool; }
  bool is_handle() const { return code == TypeCode::kHandle; }
  bool is_complex() const { return code == TypeCode::kComplex; }
  bool is_struct() const { return code == TypeCode::kStruct; }

  friend bool operator==(const DataType&, const DataType&) = default;
};

}  // namespace tilejit
