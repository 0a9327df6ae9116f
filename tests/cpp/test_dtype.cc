#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tilejit/dtype.h"
#include "tilejit/errors.h"

namespace tilejit {
namespace {

struct Expected {
  std::string name;
  TypeCode code;
  int bits;
  uint8_t dl_code;
  int dl_bits;
  std::string c_type;
};

// The table below is the specification (include/tilejit/dtype.h, DLPack 1.1 codes).
const std::vector<Expected>& all_types() {
  static const std::vector<Expected> kTypes = {
      {"int8", TypeCode::kInt, 8, dlpack::kDLInt, 8, "int8_t"},
      {"int16", TypeCode::kInt, 16, dlpack::kDLInt, 16, "int16_t"},
      {"int32", TypeCode::kInt, 32, dlpack::kDLInt, 32, "int32_t"},
      {"int64", TypeCode::kInt, 64, dlpack::kDLInt, 64, "int64_t"},
      {"uint8", TypeCode::kUInt, 8, dlpack::kDLUInt, 8, "uint8_t"},
      {"uint16", TypeCode::kUInt, 16, dlpack::kDLUInt, 16, "uint16_t"},
      {"uint32", TypeCode::kUInt, 32, dlpack::kDLUInt, 32, "uint32_t"},
      {"uint64", TypeCode::kUInt, 64, dlpack::kDLUInt, 64, "uint64_t"},
      {"float16", TypeCode::kFloat, 16, dlpack::kDLFloat, 16, "uint16_t"},
      {"float32", TypeCode::kFloat, 32, dlpack::kDLFloat, 32, "float"},
      {"float64", TypeCode::kFloat, 64, dlpack::kDLFloat, 64, "double"},
      {"bfloat16", TypeCode::kBFloat, 16, dlpack::kDLBfloat, 16, "uint16_t"},
      {"float8_e4m3", TypeCode::kFloat8E4M3, 8, dlpack::kDLFloat8_e4m3fn, 8, "uint8_t"},
      {"float8_e5m2", TypeCode::kFloat8E5M2, 8, dlpack::kDLFloat8_e5m2, 8, "uint8_t"},
      {"float4_e2m1", TypeCode::kFloat4E2M1, 4, dlpack::kDLFloat4_e2m1fn, 4, "uint8_t"},
      {"bool", TypeCode::kBool, 8, dlpack::kDLBool, 8, "bool"},
      {"handle", TypeCode::kHandle, 64, dlpack::kDLOpaqueHandle, 64, "void*"},
      // torch.complex64 / complex128: tensors only, behind a void* in host code.
      {"complex64", TypeCode::kComplex, 64, dlpack::kDLComplex, 64, "void"},
      {"complex128", TypeCode::kComplex, 128, dlpack::kDLComplex, 128, "void"},
  };
  return kTypes;
}

TEST(DataType, EveryNameParsesToItsCodeAndBitsAndPrintsBack) {
  for (const Expected& e : all_types()) {
    SCOPED_TRACE(e.name);
    DataType t = DataType::parse(e.name);
    EXPECT_EQ(t.code, e.code);
    EXPECT_EQ(t.bits, e.bits);
    EXPECT_EQ(t.lanes, 1);
    EXPECT_EQ(t.str(), e.name);
    EXPECT_EQ(DataType::parse(t.str()), t);
    EXPECT_EQ(t.c_type(), e.c_type);
  }
}

TEST(DataType, DLPackRoundTripForEveryTypeAndLaneCount) {
  for (const Expected& e : all_types()) {
    for (int lanes : {1, 2, 4, 16}) {
      SCOPED_TRACE(e.name + " lanes " + std::to_string(lanes));
      DataType t = DataType::parse(lanes == 1 ? e.name : e.name + "x" + std::to_string(lanes));
      EXPECT_EQ(t.lanes, lanes);
      dlpack::DLDataType dl = t.to_dlpack();
      EXPECT_EQ(dl.code, e.dl_code);
      EXPECT_EQ(dl.bits, e.dl_bits);
      EXPECT_EQ(dl.lanes, lanes);
      EXPECT_EQ(DataType::from_dlpack(dl), t);
      EXPECT_EQ(DataType::parse(t.str()), t);
    }
  }
}

TEST(DataType, AliasesParseToTheCanonicalType) {
  EXPECT_EQ(DataType::parse("float8_e4m3fn"), DataType::parse("float8_e4m3"));
  EXPECT_EQ(DataType::parse("float8_e4m3fn").str(), "float8_e4m3");
  EXPECT_EQ(DataType::parse("float4_e2m1fn"), DataType::parse("float4_e2m1"));
  EXPECT_EQ(DataType::parse("float4_e2m1fnx2").str(), "float4_e2m1x2");
}

TEST(DataType, Predicates) {
  for (const Expected& e : all_types()) {
    SCOPED_TRACE(e.name);
    DataType t = DataType::parse(e.name);
    EXPECT_EQ(t.is_int(), e.code == TypeCode::kInt);
    EXPECT_EQ(t.is_unsigned(), e.code == TypeCode::kUInt);
    EXPECT_EQ(t.is_integer(), e.code == TypeCode::kInt || e.code == TypeCode::kUInt);
    EXPECT_EQ(t.is_float8(), e.name.starts_with("float8"));
    EXPECT_EQ(t.is_float4(), e.name.starts_with("float4"));
    EXPECT_EQ(t.is_float(), e.name.find("float") != std::string::npos);
    EXPECT_EQ(t.is_bfloat16(), e.name == "bfloat16");
    EXPECT_EQ(t.is_boolean(), e.name == "bool");
    EXPECT_EQ(t.is_handle(), e.name == "handle");
  }
}

TEST(DataType, StorageBytes) {
  EXPECT_EQ(DataType::parse("float32").storage_bytes(7), 28);
  EXPECT_EQ(DataType::parse("float16x2").storage_bytes(3), 12);
  EXPECT_EQ(DataType::parse("bool").storage_bytes(5), 5);
  EXPECT_EQ(DataType::parse("int64").storage_bytes(0), 0);
  // float4 packs two values per byte; an odd count rounds up to whole bytes.
  EXPECT_EQ(DataType::parse("float4_e2m1").storage_bytes(7), 4);
  EXPECT_EQ(DataType::parse("float4_e2m1").storage_bytes(8), 4);
  EXPECT_EQ(DataType::parse("float8_e5m2").storage_bytes(9), 9);
  EXPECT_THROW(DataType::parse("float64").storage_bytes(int64_t{1} << 62), ArgumentError);
  EXPECT_THROW(DataType::parse("int8").storage_bytes(-1), ArgumentError);
}

TEST(DataType, BadNamesAreProgramErrorsNamingTheText) {
  for (std::string bad : {"float", "int", "int7", "float128", "Float32", "float16x", "float16x0",
                          "float16x70000", "float16xx2", "float16x2a", "", "x4", "bfloat32",
                          "complex", "complex32", "complex64x", "complex256"}) {
    SCOPED_TRACE(bad);
    try {
      DataType::parse(bad);
      FAIL() << "accepted '" << bad << "'";
    } catch (const ProgramError& e) {
      EXPECT_NE(std::string(e.what()).find("'" + bad + "'"), std::string::npos) << e.what();
    }
  }
}

TEST(DataType, UnsupportedDLPackCodesAreArgumentErrors) {
  std::vector<dlpack::DLDataType> bad = {
      {dlpack::kDLComplex, 32, 1},  // torch.complex32 (two float16): not supported
      {dlpack::kDLFloat8_e4m3fnuz, 8, 1},
      {dlpack::kDLFloat8_e8m0fnu, 8, 1},
      {dlpack::kDLFloat6_e2m3fn, 6, 1},
      {dlpack::kDLInt, 7, 1},
      {dlpack::kDLFloat, 8, 1},
      {dlpack::kDLBfloat, 32, 1},
      {dlpack::kDLFloat, 32, 0},
      {dlpack::kDLBool, 1, 1},
      {200, 8, 1},
  };
  for (dlpack::DLDataType dl : bad) {
    SCOPED_TRACE(std::to_string(dl.code) + "/" + std::to_string(dl.bits));
    try {
      DataType::from_dlpack(dl);
      FAIL() << "accepted";
    } catch (const ArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find("code " + std::to_string(dl.code)), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace tilejit
