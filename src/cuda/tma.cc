#include "cuda/tma.h"

#include <algorithm>

#include <fmt/format.h>

#include "cuda/driver.h"
#include "tilejit/errors.h"

namespace tilejit::cuda {
namespace {

std::atomic<uint64_t> g_encodes{0};

constexpr uint64_t kMaxGlobalDim = uint64_t{1} << 32;
constexpr uint64_t kMaxGlobalStride = uint64_t{1} << 40;

template <class Enum>
Enum parse_choice(std::string_view text, std::string_view descriptor, std::string_view field,
                  std::initializer_list<std::pair<std::string_view, Enum>> choices) {
  std::string expected;
  for (const auto& [spelling, value] : choices) {
    if (text == spelling) {
      return value;
    }
    expected += expected.empty() ? "" : ", ";
    expected += spelling;
  }
  throw ProgramError(fmt::format("TMA descriptor '{}': {} '{}' is not one of {}", descriptor, field,
                                 text, expected));
}

[[noreturn]] void invalid(std::string_view name, const std::string& what) {
  throw ArgumentError(fmt::format("TMA descriptor '{}': {}", name, what));
}

uint32_t swizzle_span_bytes(CUtensorMapSwizzle swizzle) {
  switch (swizzle) {
    case CU_TENSOR_MAP_SWIZZLE_NONE:
      return 0;
    case CU_TENSOR_MAP_SWIZZLE_32B:
      return 32;
    case CU_TENSOR_MAP_SWIZZLE_64B:
      return 64;
    default:
      return 128;
  }
}

}  // namespace

CUtensorMapInterleave parse_interleave(std::string_view text, std::string_view descriptor) {
  return parse_choice<CUtensorMapInterleave>(text, descriptor, "interleave",
                                             {{"none", CU_TENSOR_MAP_INTERLEAVE_NONE},
                                              {"16b", CU_TENSOR_MAP_INTERLEAVE_16B},
                                              {"32b", CU_TENSOR_MAP_INTERLEAVE_32B}});
}

CUtensorMapSwizzle parse_swizzle(std::string_view text, std::string_view descriptor) {
  return parse_choice<CUtensorMapSwizzle>(
      text, descriptor, "swizzle",
      {{"none", CU_TENSOR_MAP_SWIZZLE_NONE},
       {"32b", CU_TENSOR_MAP_SWIZZLE_32B},
       {"64b", CU_TENSOR_MAP_SWIZZLE_64B},
       {"128b", CU_TENSOR_MAP_SWIZZLE_128B},
       {"128b_atom_32b", CU_TENSOR_MAP_SWIZZLE_128B_ATOM_32B},
       {"128b_atom_32b_flip_8b", CU_TENSOR_MAP_SWIZZLE_128B_ATOM_32B_FLIP_8B},
       {"128b_atom_64b", CU_TENSOR_MAP_SWIZZLE_128B_ATOM_64B}});
}

CUtensorMapL2promotion parse_l2_promotion(std::string_view text, std::string_view descriptor) {
  return parse_choice<CUtensorMapL2promotion>(text, descriptor, "l2_promotion",
                                              {{"none", CU_TENSOR_MAP_L2_PROMOTION_NONE},
                                               {"64b", CU_TENSOR_MAP_L2_PROMOTION_L2_64B},
                                               {"128b", CU_TENSOR_MAP_L2_PROMOTION_L2_128B},
                                               {"256b", CU_TENSOR_MAP_L2_PROMOTION_L2_256B}});
}

CUtensorMapFloatOOBfill parse_oob_fill(std::string_view text, std::string_view descriptor) {
  return parse_choice<CUtensorMapFloatOOBfill>(
      text, descriptor, "oob_fill",
      {{"none", CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE},
       {"nan_request_zero_fma", CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA}});
}

CUtensorMapDataType tma_data_type(DataType dtype, std::string_view descriptor) {
  if (dtype.lanes == 1) {
    switch (dtype.code) {
      case TypeCode::kFloat:
        if (dtype.bits == 16) return CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
        if (dtype.bits == 32) return CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
        if (dtype.bits == 64) return CU_TENSOR_MAP_DATA_TYPE_FLOAT64;
        break;
      case TypeCode::kBFloat:
        if (dtype.bits == 16) return CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
        break;
      case TypeCode::kInt:
      case TypeCode::kUInt:
        if (dtype.bits == 8) return CU_TENSOR_MAP_DATA_TYPE_UINT8;
        if (dtype.bits == 16) return CU_TENSOR_MAP_DATA_TYPE_UINT16;
        if (dtype.bits == 32) {
          return dtype.is_int() ? CU_TENSOR_MAP_DATA_TYPE_INT32 : CU_TENSOR_MAP_DATA_TYPE_UINT32;
        }
        if (dtype.bits == 64) {
          return dtype.is_int() ? CU_TENSOR_MAP_DATA_TYPE_INT64 : CU_TENSOR_MAP_DATA_TYPE_UINT64;
        }
        break;
      case TypeCode::kFloat8E4M3:
      case TypeCode::kFloat8E5M2:
      case TypeCode::kBool:
        return CU_TENSOR_MAP_DATA_TYPE_UINT8;  // TMA moves bytes; the kernel interprets them
      default:
        break;
    }
  }
  throw ProgramError(
      fmt::format("TMA descriptor '{}': its buffer's dtype {} has no TMA element type (supported: "
                  "8/16/32/64-bit "
                  "integers, float16, bfloat16, float32, float64, float8, bool)",
                  descriptor, dtype.str()));
}

void validate_tma(const TmaEncodeParams& p, std::string_view name) {
  bool im2col = p.kind == TmaDescriptor::Kind::kIm2col;
  uint32_t min_rank = im2col || p.interleave != CU_TENSOR_MAP_INTERLEAVE_NONE ? 3 : 1;
  if (p.rank < min_rank || p.rank > kMaxTmaRank) {
    invalid(name,
            fmt::format(
                "rank {} is out of range: expected {}..{}{}", p.rank, min_rank, kMaxTmaRank,
                im2col ? " for an im2col descriptor" : (min_rank == 3 ? " with interleave" : "")));
  }
  uint64_t address = reinterpret_cast<uintptr_t>(p.address);
  uint64_t alignment = p.interleave == CU_TENSOR_MAP_INTERLEAVE_32B ? 32 : 16;
  if (address == 0 || address % alignment != 0) {
    invalid(name, fmt::format("global address {:#x} must be a non-null multiple of {} bytes",
                              address, alignment));
  }
  for (uint32_t i = 0; i < p.rank; ++i) {
    if (p.dims[i] == 0 || p.dims[i] > kMaxGlobalDim) {
      invalid(name,
              fmt::format("global_dims[{}] = {} is out of range: expected 1..2^32", i, p.dims[i]));
    }
  }
  uint64_t stride_multiple = p.interleave == CU_TENSOR_MAP_INTERLEAVE_32B ? 32 : 16;
  for (uint32_t i = 0; i + 1 < p.rank; ++i) {
    if (p.strides[i] % stride_multiple != 0 || p.strides[i] >= kMaxGlobalStride) {
      invalid(name,
              fmt::format("global_strides[{}] (dimension {}) = {} bytes must be a multiple of {} "
                          "and less than 2^40",
                          i, i + 1, p.strides[i], stride_multiple));
    }
  }
  for (uint32_t i = 0; i < p.rank; ++i) {
    if (p.element_strides[i] == 0 || p.element_strides[i] > 8) {
      invalid(name, fmt::format("element_strides[{}] = {} is out of range: expected 1..8", i,
                                p.element_strides[i]));
    }
  }
  if (p.interleave == CU_TENSOR_MAP_INTERLEAVE_32B && p.swizzle != CU_TENSOR_MAP_SWIZZLE_32B) {
    invalid(name, "interleave 32b requires swizzle 32b");
  }
  uint32_t span = swizzle_span_bytes(p.swizzle);
  if (!im2col) {
    for (uint32_t i = 0; i < p.rank; ++i) {
      if (p.box[i] == 0 || p.box[i] > 256) {
        invalid(name,
                fmt::format("box_dims[{}] = {} is out of range: expected 1..256", i, p.box[i]));
      }
    }
    uint64_t inner_bytes = uint64_t{p.box[0]} * p.element_bytes;
    if (p.interleave == CU_TENSOR_MAP_INTERLEAVE_NONE) {
      if (inner_bytes % 16 != 0) {
        invalid(name, fmt::format("box_dims[0] * element size = {} bytes must be a multiple of 16",
                                  inner_bytes));
      }
      if (span != 0 && inner_bytes > span) {
        invalid(name,
                fmt::format("box_dims[0] * element size = {} bytes exceeds the swizzle span of "
                            "{} bytes",
                            inner_bytes, span));
      }
    }
    return;
  }
  // im2col: corners bound the pixel box in the rank - 2 spatial dimensions.
  int corner_limit = p.rank == 3 ? 32768 : (p.rank == 4 ? 128 : 16);
  for (uint32_t i = 0; i + 2 < p.rank; ++i) {
    for (int corner : {p.lower_corner[i], p.upper_corner[i]}) {
      if (corner < -corner_limit || corner > corner_limit - 1) {
        invalid(name,
                fmt::format("im2col corner offset {} in spatial dimension {} is out of range: "
                            "expected {}..{} for rank {}",
                            corner, i, -corner_limit, corner_limit - 1, p.rank));
      }
    }
  }
  if (p.channels_per_pixel == 0 || p.channels_per_pixel > 256) {
    invalid(name, fmt::format("channels_per_pixel = {} is out of range: expected 1..256",
                              p.channels_per_pixel));
  }
  if (p.pixels_per_column == 0 || p.pixels_per_column > 1024) {
    invalid(name, fmt::format("pixels_per_column = {} is out of range: expected 1..1024",
                              p.pixels_per_column));
  }
  uint64_t inner_bytes = uint64_t{p.channels_per_pixel} * p.element_bytes;
  if (p.interleave == CU_TENSOR_MAP_INTERLEAVE_NONE && span != 0 && inner_bytes > span) {
    invalid(name,
            fmt::format("channels_per_pixel * element size = {} bytes exceeds the swizzle span "
                        "of {} bytes",
                        inner_bytes, span));
  }
}

uint64_t tma_encode_count() {
  return g_encodes.load(std::memory_order_relaxed);
}

void encode_tma(const TmaEncodeParams& p, std::string_view name, CUtensorMap* out) {
  validate_tma(p, name);
  g_encodes.fetch_add(1, std::memory_order_relaxed);
  const DriverApi& api = driver();
  std::string context = fmt::format("TMA descriptor {}", name);
  if (p.kind == TmaDescriptor::Kind::kTiled) {
    check(api.cuTensorMapEncodeTiled(out, p.data_type, p.rank, p.address, p.dims.data(),
                                     p.strides.data(), p.box.data(), p.element_strides.data(),
                                     p.interleave, p.swizzle, p.l2_promotion, p.oob_fill),
          "cuTensorMapEncodeTiled", context);
  } else {
    check(api.cuTensorMapEncodeIm2col(out, p.data_type, p.rank, p.address, p.dims.data(),
                                      p.strides.data(), p.lower_corner.data(),
                                      p.upper_corner.data(), p.channels_per_pixel,
                                      p.pixels_per_column, p.element_strides.data(), p.interleave,
                                      p.swizzle, p.l2_promotion, p.oob_fill),
          "cuTensorMapEncodeIm2col", context);
  }
}

TmaSlot::TmaSlot(const Program& program, int descriptor_index, const detail::Binder& binder) {
  const TmaDescriptor& d = program.tma_descriptors.at(static_cast<size_t>(descriptor_index));
  name_ = d.name;
  buffer_name_ = d.buffer;
  const KernelParam* buffer = nullptr;
  for (size_t i = 0; i < program.params.size(); ++i) {
    if (program.params[i].name == d.buffer) {
      buffer = &program.params[i];
      buffer_index_ = static_cast<int>(i);
    }
  }
  if (buffer == nullptr || buffer->is_scalar()) {
    throw ProgramError(fmt::format("TMA descriptor '{}': buffer '{}' is not a tensor parameter",
                                   d.name, d.buffer));
  }
  TmaEncodeParams& p = static_;
  p.kind = d.kind;
  p.data_type = tma_data_type(buffer->dtype, d.name);
  p.element_bytes = static_cast<uint32_t>(buffer->dtype.storage_bytes(1));
  p.rank = d.rank != 0 ? d.rank : static_cast<uint32_t>(buffer->shape.size());
  if (p.rank < 1 || p.rank > kMaxTmaRank) {
    throw ProgramError(
        fmt::format("TMA descriptor '{}': rank {} is out of range: expected 1..5", d.name, p.rank));
  }
  auto expect_count = [&](size_t count, size_t expected, std::string_view field) {
    if (count != expected) {
      throw ProgramError(fmt::format("TMA descriptor '{}': {} has {} values, expected {}", d.name,
                                     field, count, expected));
    }
  };
  if (d.global_dims.empty()) {
    expect_count(buffer->shape.size(), p.rank, fmt::format("buffer '{}' (its shape)", d.buffer));
  } else {
    expect_count(d.global_dims.size(), p.rank, "global_dims");
    for (size_t i = 0; i < d.global_dims.size(); ++i) {
      dims_.push_back(binder.compile(
          d.global_dims[i], fmt::format("global_dims[{}] of TMA descriptor '{}'", i, d.name)));
    }
  }
  if (!d.global_strides.empty()) {
    expect_count(d.global_strides.size(), p.rank - 1, "global_strides");
    for (size_t i = 0; i < d.global_strides.size(); ++i) {
      strides_.push_back(
          binder.compile(d.global_strides[i],
                         fmt::format("global_strides[{}] of TMA descriptor '{}'", i, d.name)));
    }
  } else if (d.global_dims.empty() == false && buffer->shape.size() != p.rank) {
    throw ProgramError(fmt::format(
        "TMA descriptor '{}': global_strides must be given when global_dims do not follow the "
        "buffer's shape",
        d.name));
  }
  if (d.kind == TmaDescriptor::Kind::kTiled) {
    expect_count(d.box_dims.size(), p.rank, "box_dims");
    std::copy(d.box_dims.begin(), d.box_dims.end(), p.box.begin());
  } else {
    if (p.rank < 3) {
      throw ProgramError(fmt::format(
          "TMA descriptor '{}': an im2col descriptor needs rank 3..5, got {}", d.name, p.rank));
    }
    expect_count(d.lower_corner.size(), p.rank - 2, "lower_corner");
    expect_count(d.upper_corner.size(), p.rank - 2, "upper_corner");
    std::copy(d.lower_corner.begin(), d.lower_corner.end(), p.lower_corner.begin());
    std::copy(d.upper_corner.begin(), d.upper_corner.end(), p.upper_corner.begin());
    p.channels_per_pixel = d.channels_per_pixel;
    p.pixels_per_column = d.pixels_per_column;
  }
  if (!d.element_strides.empty()) {
    expect_count(d.element_strides.size(), p.rank, "element_strides");
    std::copy(d.element_strides.begin(), d.element_strides.end(), p.element_strides.begin());
  }
  p.interleave = parse_interleave(d.interleave, d.name);
  p.swizzle = parse_swizzle(d.swizzle, d.name);
  p.l2_promotion = parse_l2_promotion(d.l2_promotion, d.name);
  p.oob_fill = parse_oob_fill(d.oob_fill, d.name);
}

TmaEncodeParams TmaSlot::params_for(const detail::BoundCall& call) const {
  TmaEncodeParams p = static_;
  p.address = call.data[static_cast<size_t>(buffer_index_)];
  const dlpack::DLTensor* tensor = call.tensors[static_cast<size_t>(buffer_index_)];
  const uint32_t rank = p.rank;
  if (!dims_.empty()) {
    for (uint32_t i = 0; i < rank; ++i) {
      int64_t value = dims_[i].eval(call.symbols.data());
      p.dims[i] = value > 0 ? static_cast<uint64_t>(value) : 0;
    }
  } else {
    for (uint32_t i = 0; i < rank; ++i) {
      int64_t extent = tensor->shape[rank - 1 - i];
      p.dims[i] = extent > 0 ? static_cast<uint64_t>(extent) : 0;
    }
  }
  if (!strides_.empty()) {
    for (uint32_t i = 0; i + 1 < rank; ++i) {
      int64_t value = strides_[i].eval(call.symbols.data());
      p.strides[i] = static_cast<uint64_t>(value);
    }
    return p;
  }
  // The buffer's own strides, innermost first, in bytes; TMA has no stride for dimension 0,
  // so the buffer's innermost stride must be one element.
  int64_t compact = 1;
  for (uint32_t i = 0; i < rank; ++i) {
    int dim = static_cast<int>(rank - 1 - i);
    int64_t stride = tensor->strides != nullptr ? tensor->strides[dim] : compact;
    if (i == 0 && stride != 1) {
      invalid(name_, fmt::format("buffer '{}' must be contiguous in its last dimension (stride 1), "
                                 "got stride {}",
                                 buffer_name_, stride));
    }
    if (i > 0) {
      p.strides[i - 1] = static_cast<uint64_t>(stride) * p.element_bytes;
    }
    compact *= tensor->shape[dim];
  }
  return p;
}

TmaSlot::Key TmaSlot::key_of(const TmaEncodeParams& p) const {
  Key key{};
  key[0] = reinterpret_cast<uintptr_t>(p.address);
  for (int i = 0; i < kMaxTmaRank; ++i) {
    key[1 + i] = p.dims[i];
  }
  for (int i = 0; i + 1 < kMaxTmaRank; ++i) {
    key[1 + kMaxTmaRank + i] = p.strides[i];
  }
  return key;
}

bool TmaSlot::lookup(const Key& key, CUtensorMap* out) const {
  uint64_t before = sequence_.load(std::memory_order_acquire);
  if (before == 0 || (before & 1) != 0) {
    return false;  // never filled, or a writer is inside
  }
  for (int i = 0; i < kKeyWords; ++i) {
    if (key_[i].load(std::memory_order_relaxed) != key[i]) {
      return false;
    }
  }
  for (int i = 0; i < CU_TENSOR_MAP_NUM_QWORDS; ++i) {
    out->opaque[i] = map_[i].load(std::memory_order_relaxed);
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  return sequence_.load(std::memory_order_relaxed) == before;
}

void TmaSlot::publish(const Key& key, const CUtensorMap& map) const {
  uint64_t current = sequence_.load(std::memory_order_relaxed);
  if ((current & 1) != 0 ||
      !sequence_.compare_exchange_strong(current, current + 1, std::memory_order_acquire)) {
    return;  // another thread is publishing; ours stays a local encode
  }
  std::atomic_thread_fence(std::memory_order_release);
  for (int i = 0; i < kKeyWords; ++i) {
    key_[i].store(key[i], std::memory_order_relaxed);
  }
  for (int i = 0; i < CU_TENSOR_MAP_NUM_QWORDS; ++i) {
    map_[i].store(map.opaque[i], std::memory_order_relaxed);
  }
  sequence_.store(current + 2, std::memory_order_release);
}

void TmaSlot::prepare(const detail::BoundCall& call, CUtensorMap* out) const {
  TmaEncodeParams p = params_for(call);
  Key key = key_of(p);
  if (lookup(key, out)) {
    return;
  }
  encode_tma(p, name_, out);
  publish(key, *out);
}

std::string TmaSlot::describe() const {
  const TmaEncodeParams& p = static_;
  std::string text = fmt::format(
      "tma {} = {}(buffer={}, rank={}, dtype={}", name_,
      p.kind == TmaDescriptor::Kind::kTiled ? "cuTensorMapEncodeTiled" : "cuTensorMapEncodeIm2col",
      buffer_name_, p.rank, static_cast<int>(p.data_type));
  auto list = [](auto begin, auto end) { return fmt::format("[{}]", fmt::join(begin, end, ", ")); };
  text += dims_.empty() ? ", global_dims=<buffer shape, reversed>" : ", global_dims=<exprs>";
  text += strides_.empty() ? ", global_strides=<buffer strides, reversed, bytes>"
                           : ", global_strides=<exprs>";
  if (p.kind == TmaDescriptor::Kind::kTiled) {
    text += ", box=" + list(p.box.begin(), p.box.begin() + p.rank);
  } else {
    text += fmt::format(", lower={}, upper={}, channels_per_pixel={}, pixels_per_column={}",
                        list(p.lower_corner.begin(), p.lower_corner.begin() + (p.rank - 2)),
                        list(p.upper_corner.begin(), p.upper_corner.begin() + (p.rank - 2)),
                        p.channels_per_pixel, p.pixels_per_column);
  }
  text +=
      fmt::format(", element_strides={}, interleave={}, swizzle={}, l2_promotion={}, oob_fill={})",
                  list(p.element_strides.begin(), p.element_strides.begin() + p.rank),
                  static_cast<int>(p.interleave), static_cast<int>(p.swizzle),
                  static_cast<int>(p.l2_promotion), static_cast<int>(p.oob_fill));
  return text;
}

}  // namespace tilejit::cuda
