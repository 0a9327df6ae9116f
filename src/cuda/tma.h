// TMA descriptors (CUtensorMap): validation, encoding, and a per-descriptor cache that reuses
// an encoded map across calls while the buffer's pointer, dims and strides are unchanged.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "call/binder.h"
#include "cuda/driver_api.h"
#include "ir/compiled_expr.h"
#include "tilejit/program.h"

namespace tilejit::cuda {

inline constexpr int kMaxTmaRank = 5;

// Every argument of cuTensorMapEncodeTiled / cuTensorMapEncodeIm2col, in the driver's order
// (index 0 is the innermost dimension). `strides[i]` is the byte stride of dimension i + 1.
struct TmaEncodeParams {
  TmaDescriptor::Kind kind = TmaDescriptor::Kind::kTiled;
  CUtensorMapDataType data_type = CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  uint32_t element_bytes = 4;
  uint32_t rank = 0;
  void* address = nullptr;
  std::array<uint64_t, kMaxTmaRank> dims{};
  std::array<uint64_t, kMaxTmaRank - 1> strides{};
  std::array<uint32_t, kMaxTmaRank> box{};  // tiled only
  std::array<uint32_t, kMaxTmaRank> element_strides{1, 1, 1, 1, 1};
  CUtensorMapInterleave interleave = CU_TENSOR_MAP_INTERLEAVE_NONE;
  CUtensorMapSwizzle swizzle = CU_TENSOR_MAP_SWIZZLE_NONE;
  CUtensorMapL2promotion l2_promotion = CU_TENSOR_MAP_L2_PROMOTION_NONE;
  CUtensorMapFloatOOBfill oob_fill = CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE;
  // im2col only: rank - 2 corner offsets, channels per pixel, pixels per column.
  std::array<int, kMaxTmaRank - 2> lower_corner{};
  std::array<int, kMaxTmaRank - 2> upper_corner{};
  uint32_t channels_per_pixel = 0;
  uint32_t pixels_per_column = 0;
};

// Checks every documented constraint of the driver's encoders; throws ArgumentError that names
// the descriptor, the field and what was expected. Touches no driver.
void validate_tma(const TmaEncodeParams& params, std::string_view name);
// validate_tma(), then the driver's encoder; a driver failure is CudaError naming `name`.
void encode_tma(const TmaEncodeParams& params, std::string_view name, CUtensorMap* out);

// How many descriptors encode_tma() has encoded in this process (a relaxed counter, bumped on
// the encode path only): tests use it to see the per-call and cross-call reuse.
uint64_t tma_encode_count();

// The enum spellings of the Program format ("128b", "nan_request_zero_fma", ...). Throw
// ProgramError naming the descriptor and the field.
CUtensorMapInterleave parse_interleave(std::string_view text, std::string_view descriptor);
CUtensorMapSwizzle parse_swizzle(std::string_view text, std::string_view descriptor);
CUtensorMapL2promotion parse_l2_promotion(std::string_view text, std::string_view descriptor);
CUtensorMapFloatOOBfill parse_oob_fill(std::string_view text, std::string_view descriptor);
// float16 -> FLOAT16, int8/uint8/bool/float8 -> UINT8, ...; ProgramError for float4.
CUtensorMapDataType tma_data_type(DataType dtype, std::string_view descriptor);

// One TMA descriptor of a loaded Program: its static parameters resolved at load, its dynamic
// ones (address, dims, strides) read from each call. prepare() is called concurrently from
// many threads without a lock: the cache is a seqlock that a reader checks and a writer
// publishes to with a try-lock; a thread that loses the try-lock simply keeps its local encode.
class TmaSlot {
 public:
  TmaSlot(const Program& program, int descriptor_index, const detail::Binder& binder);
  TmaSlot(const TmaSlot&) = delete;
  TmaSlot& operator=(const TmaSlot&) = delete;

  // Writes the encoded map for this call's buffer into `out` (64-byte aligned stack storage).
  void prepare(const detail::BoundCall& call, CUtensorMap* out) const;
  // The parameters this call would encode with (validation and tests use it).
  TmaEncodeParams params_for(const detail::BoundCall& call) const;
  const std::string& name() const { return name_; }
  std::string describe() const;

 private:
  static constexpr int kKeyWords = 1 + kMaxTmaRank + (kMaxTmaRank - 1);
  using Key = std::array<uint64_t, kKeyWords>;
  Key key_of(const TmaEncodeParams& params) const;
  bool lookup(const Key& key, CUtensorMap* out) const;
  void publish(const Key& key, const CUtensorMap& map) const;

  std::string name_;
  std::string buffer_name_;
  int buffer_index_ = -1;
  TmaEncodeParams static_;
  std::vector<detail::CompiledExpr> dims_;     // empty: the buffer's shape, reversed
  std::vector<detail::CompiledExpr> strides_;  // empty: the buffer's strides, reversed, in bytes

  mutable std::atomic<uint64_t> sequence_{0};  // odd while a writer is inside
  mutable std::array<std::atomic<uint64_t>, kKeyWords> key_{};
  mutable std::array<std::atomic<uint64_t>, CU_TENSOR_MAP_NUM_QWORDS> map_{};
};

}  // namespace tilejit::cuda
