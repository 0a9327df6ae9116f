// TMA descriptor parameters are checked before any driver call: every invalid case raises an
// ArgumentError naming the descriptor and the field. Runs with or without a driver.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "call/binder.h"
#include "cuda/driver.h"
#include "cuda/tma.h"
#include "tilejit/tilejit.h"

namespace tilejit {
namespace {

using cuda::TmaEncodeParams;

alignas(256) float g_storage[1024];

TmaEncodeParams valid_tiled() {
  TmaEncodeParams p;
  p.kind = TmaDescriptor::Kind::kTiled;
  p.data_type = cuda::CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  p.element_bytes = 4;
  p.rank = 2;
  p.address = g_storage;
  p.dims = {64, 48, 0, 0, 0};
  p.strides = {256, 0, 0, 0};
  p.box = {32, 16, 0, 0, 0};
  return p;
}

TmaEncodeParams valid_im2col() {
  TmaEncodeParams p;
  p.kind = TmaDescriptor::Kind::kIm2col;
  p.data_type = cuda::CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  p.element_bytes = 4;
  p.rank = 4;
  p.address = g_storage;
  p.dims = {8, 6, 5, 2, 0};
  p.strides = {32, 192, 960, 0};
  p.lower_corner = {-1, -1, 0};
  p.upper_corner = {-1, -1, 0};
  p.channels_per_pixel = 8;
  p.pixels_per_column = 32;
  return p;
}

// Asserts that `params` is rejected with an ArgumentError whose message names the descriptor
// and contains `field`, both by validate_tma and by encode_tma (i.e. before the driver).
void expect_rejected(const TmaEncodeParams& params, const std::string& field) {
  for (int via_encode = 0; via_encode < 2; ++via_encode) {
    try {
      if (via_encode) {
        cuda::CUtensorMap map;
        cuda::encode_tma(params, "A_desc", &map);
      } else {
        cuda::validate_tma(params, "A_desc");
      }
      ADD_FAILURE() << "accepted an invalid " << field;
    } catch (const ArgumentError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find("'A_desc'"), std::string::npos) << what;
      EXPECT_NE(what.find(field), std::string::npos) << "expected '" << field << "' in: " << what;
    } catch (const Error& e) {
      ADD_FAILURE() << "wrong exception type for " << field << ": " << e.what();
    }
  }
}

void expect_rejected(std::function<void(TmaEncodeParams&)> mutate, const std::string& field,
                     TmaEncodeParams base = valid_tiled()) {
  mutate(base);
  expect_rejected(base, field);
}

TEST(TmaValidation, ValidParametersPass) {
  EXPECT_NO_THROW(cuda::validate_tma(valid_tiled(), "A_desc"));
  EXPECT_NO_THROW(cuda::validate_tma(valid_im2col(), "A_desc"));
  TmaEncodeParams p = valid_tiled();
  p.rank = 5;
  p.dims = {4, 2, 2, 2, 2};
  p.strides = {16, 32, 64, 128};
  p.box = {4, 1, 1, 1, 1};
  EXPECT_NO_THROW(cuda::validate_tma(p, "A_desc"));
}

TEST(TmaValidation, MisalignedAddress) {
  expect_rejected([](TmaEncodeParams& p) { p.address = reinterpret_cast<char*>(g_storage) + 8; },
                  "global address");
  expect_rejected([](TmaEncodeParams& p) { p.address = nullptr; }, "global address");
  // interleave 32b needs 32-byte alignment
  expect_rejected(
      [](TmaEncodeParams& p) {
        p.rank = 3;
        p.dims = {8, 4, 4, 0, 0};
        p.strides = {32, 128, 0, 0};
        p.box = {8, 4, 4, 0, 0};
        p.interleave = cuda::CU_TENSOR_MAP_INTERLEAVE_32B;
        p.swizzle = cuda::CU_TENSOR_MAP_SWIZZLE_32B;
        p.address = reinterpret_cast<char*>(g_storage) + 16;
      },
      "multiple of 32 bytes");
}

TEST(TmaValidation, Strides) {
  expect_rejected([](TmaEncodeParams& p) { p.strides[0] = 250; }, "global_strides[0]");
  expect_rejected([](TmaEncodeParams& p) { p.strides[0] = uint64_t{1} << 40; }, "less than 2^40");
  expect_rejected(
      [](TmaEncodeParams& p) {
        p.rank = 3;
        p.dims = {64, 4, 4, 0, 0};
        p.strides = {256, 1000, 0, 0};
        p.box = {32, 4, 4, 0, 0};
      },
      "global_strides[1]");
}

TEST(TmaValidation, GlobalDims) {
  expect_rejected([](TmaEncodeParams& p) { p.dims[1] = 0; }, "global_dims[1]");
  expect_rejected([](TmaEncodeParams& p) { p.dims[0] = (uint64_t{1} << 32) + 1; },
                  "global_dims[0]");
}

TEST(TmaValidation, BoxDims) {
  expect_rejected([](TmaEncodeParams& p) { p.box[1] = 257; }, "box_dims[1]");
  expect_rejected([](TmaEncodeParams& p) { p.box[1] = 0; }, "box_dims[1]");
  // 6 floats = 24 bytes: not a multiple of 16
  expect_rejected([](TmaEncodeParams& p) { p.box[0] = 6; }, "multiple of 16");
  // 64 floats = 256 bytes exceed a 128-byte swizzle span
  expect_rejected(
      [](TmaEncodeParams& p) {
        p.box[0] = 64;
        p.swizzle = cuda::CU_TENSOR_MAP_SWIZZLE_128B;
      },
      "swizzle span");
}

TEST(TmaValidation, Rank) {
  expect_rejected([](TmaEncodeParams& p) { p.rank = 0; }, "rank 0");
  expect_rejected([](TmaEncodeParams& p) { p.rank = 6; }, "rank 6");
  expect_rejected([](TmaEncodeParams& p) { p.interleave = cuda::CU_TENSOR_MAP_INTERLEAVE_16B; },
                  "with interleave");
}

TEST(TmaValidation, ElementStrides) {
  expect_rejected([](TmaEncodeParams& p) { p.element_strides[1] = 9; }, "element_strides[1]");
  expect_rejected([](TmaEncodeParams& p) { p.element_strides[0] = 0; }, "element_strides[0]");
}

TEST(TmaValidation, Im2col) {
  TmaEncodeParams base = valid_im2col();
  expect_rejected([](TmaEncodeParams& p) { p.rank = 2; }, "im2col", base);
  expect_rejected([](TmaEncodeParams& p) { p.lower_corner[0] = -129; }, "corner offset -129", base);
  expect_rejected([](TmaEncodeParams& p) { p.upper_corner[1] = 128; }, "corner offset 128", base);
  expect_rejected([](TmaEncodeParams& p) { p.channels_per_pixel = 0; }, "channels_per_pixel", base);
  expect_rejected([](TmaEncodeParams& p) { p.channels_per_pixel = 257; }, "channels_per_pixel",
                  base);
  expect_rejected([](TmaEncodeParams& p) { p.pixels_per_column = 1025; }, "pixels_per_column",
                  base);
  expect_rejected(
      [](TmaEncodeParams& p) {
        p.channels_per_pixel = 16;  // 64 bytes > the 32-byte swizzle span
        p.swizzle = cuda::CU_TENSOR_MAP_SWIZZLE_32B;
      },
      "swizzle span", base);
  // rank 3 allows a wide corner range, rank 5 a narrow one
  TmaEncodeParams wide = base;
  wide.rank = 3;
  wide.dims = {8, 6, 10, 0, 0};
  wide.strides = {32, 192, 0, 0};
  wide.lower_corner = {-300, 0, 0};
  wide.upper_corner = {300, 0, 0};
  EXPECT_NO_THROW(cuda::validate_tma(wide, "A_desc"));
  expect_rejected(
      [](TmaEncodeParams& p) {
        p.rank = 5;
        p.dims = {8, 4, 4, 4, 2};
        p.strides = {32, 128, 512, 2048};
        p.lower_corner = {-17, 0, 0};
      },
      "corner offset -17", base);
}

TEST(TmaValidation, EnumSpellingsAndDtypesAreProgramErrors) {
  EXPECT_EQ(cuda::parse_swizzle("128b", "d"), cuda::CU_TENSOR_MAP_SWIZZLE_128B);
  EXPECT_EQ(cuda::parse_interleave("32b", "d"), cuda::CU_TENSOR_MAP_INTERLEAVE_32B);
  EXPECT_EQ(cuda::parse_l2_promotion("256b", "d"), cuda::CU_TENSOR_MAP_L2_PROMOTION_L2_256B);
  EXPECT_EQ(cuda::parse_oob_fill("nan_request_zero_fma", "d"),
            cuda::CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA);
  EXPECT_EQ(cuda::tma_data_type(DataType::parse("bfloat16"), "d"),
            cuda::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16);
  EXPECT_EQ(cuda::tma_data_type(DataType::parse("float8_e4m3"), "d"),
            cuda::CU_TENSOR_MAP_DATA_TYPE_UINT8);
  EXPECT_EQ(cuda::tma_data_type(DataType::parse("int64"), "d"),
            cuda::CU_TENSOR_MAP_DATA_TYPE_INT64);
  try {
    cuda::parse_swizzle("96b", "B_desc");
    ADD_FAILURE() << "accepted swizzle 96b";
  } catch (const ProgramError& e) {
    EXPECT_NE(std::string(e.what()).find("'B_desc'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("swizzle"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cuda::tma_data_type(DataType::parse("float4_e2m1"), "d"), ProgramError);
}

// The slot reads dims and byte strides from the bound buffer (reversed: innermost first),
// and refuses a buffer that is not contiguous in its last dimension.
TEST(TmaValidation, SlotDerivesDimsAndStridesFromTheBuffer) {
  TmaDescriptor d;
  d.name = "X_desc";
  d.buffer = "X";
  d.rank = 3;
  d.box_dims = {8, 4, 2};
  Program program = ProgramBuilder("p")
                        .source("extern \"C\" __global__ void k(float* X) {}")
                        .tensor("X", "float16", {"B", "M", "N"})
                        .tma(d)
                        .launch(Launch("k"))
                        .build();
  detail::Binder binder(program, {}, dlpack::kDLCUDA);
  cuda::TmaSlot slot(program, 0, binder);
  int64_t shape[3] = {3, 5, 40};
  dlpack::DLTensor tensor{};
  tensor.data = g_storage;
  tensor.ndim = 3;
  tensor.shape = shape;
  tensor.dtype = DataType::parse("float16").to_dlpack();
  detail::BoundCall call{};
  call.data[0] = g_storage;
  call.tensors[0] = &tensor;
  TmaEncodeParams p = slot.params_for(call);
  EXPECT_EQ(p.data_type, cuda::CU_TENSOR_MAP_DATA_TYPE_FLOAT16);
  EXPECT_EQ(p.rank, 3u);
  EXPECT_EQ(p.dims[0], 40u);
  EXPECT_EQ(p.dims[1], 5u);
  EXPECT_EQ(p.dims[2], 3u);
  EXPECT_EQ(p.strides[0], 80u);   // 40 halves
  EXPECT_EQ(p.strides[1], 400u);  // 5 * 40 halves
  EXPECT_EQ(p.box[0], 8u);
  EXPECT_NO_THROW(cuda::validate_tma(p, slot.name()));

  // A row of 5 * 2 bytes breaks the 16-byte stride rule: caught before the driver.
  int64_t odd_shape[3] = {3, 7, 5};
  tensor.shape = odd_shape;
  cuda::CUtensorMap map;
  try {
    slot.prepare(call, &map);
    ADD_FAILURE() << "encoded a 10-byte row stride";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("'X_desc'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("global_strides[0]"), std::string::npos) << e.what();
  }

  int64_t strides[3] = {400, 80, 2};
  tensor.shape = shape;
  tensor.strides = strides;
  try {
    slot.params_for(call);
    ADD_FAILURE() << "accepted an inner stride of 2";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("contiguous in its last dimension"), std::string::npos)
        << e.what();
  }
}

TEST(TmaValidation, StaticMistakesAreProgramErrorsAtLoad) {
  auto build = [](TmaDescriptor d) {
    Program program = ProgramBuilder("p")
                          .source("extern \"C\" __global__ void k(float* X) {}")
                          .tensor("X", "float32", {"M", "N"})
                          .launch(Launch("k"))
                          .build();
    program.tma_descriptors.push_back(std::move(d));
    detail::Binder binder(program, {}, dlpack::kDLCUDA);
    cuda::TmaSlot slot(program, 0, binder);
  };
  TmaDescriptor d;
  d.name = "X_desc";
  d.buffer = "X";
  d.rank = 2;
  d.box_dims = {32};  // one value for rank 2
  EXPECT_THROW(build(d), ProgramError);
  d.box_dims = {32, 8};
  d.swizzle = "256b";
  EXPECT_THROW(build(d), ProgramError);
  d.swizzle = "none";
  d.kind = TmaDescriptor::Kind::kIm2col;  // rank 2 cannot be im2col
  EXPECT_THROW(build(d), ProgramError);
}

}  // namespace
}  // namespace tilejit
