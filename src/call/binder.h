// The Binder: one argument checker shared by every backend (DESIGN.md §2 step 5).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ir/compiled_expr.h"
#include "tilejit/kernel.h"

namespace tilejit::detail {

inline constexpr int kMaxParams = 64;
inline constexpr int kMaxSymbols = 64;

// The result of binding one call: everything an executor needs, in fixed-size storage, so
// that binding allocates nothing (outputs aside). Indexed by parameter position.
struct BoundCall {
  Device device;                       // where the tensors live (all on one device)
  std::array<void*, kMaxParams> data;  // tensor: data + byte_offset; handle: pointer
  std::array<const dlpack::DLTensor*, kMaxParams> tensors;  // tensor params (outputs included)
  std::array<int64_t, kMaxParams> int_values;               // int/uint/bool scalars, range-checked
  std::array<double, kMaxParams> float_values;              // float scalars
  std::array<int64_t, kMaxSymbols> symbols;                 // every symbol slot, bound
  // Struct params' bytes, each at its alignment; data[param] points at them. The pointers
  // point into this object: a BoundCall is filled and read in place, never copied.
  alignas(16) std::array<unsigned char, kMaxStructBytes> struct_bytes;
};

// Symbols are the shape/stride variables of the params plus the names of integer scalar
// params; a scalar that shares a shape variable's name must agree with it.
class Binder {
 public:
  // expected_device_type: dlpack::kDLCPU for the cpu backend, kDLCUDA for CUDA backends
  // (which also accept kDLCUDAManaged). out_idx: resolved, non-negative, ascending.
  Binder(const Program& program, std::vector<int> out_idx, int32_t expected_device_type);

  const std::vector<std::string>& symbols() const { return symbols_; }
  int symbol_slot(std::string_view name) const;  // -1 if none
  CompiledExpr compile(const Expr& expr, std::string_view context) const;

  // Checks `args` (the inputs: every param not in out_idx, in order) and fills `bound`;
  // allocates the out_idx outputs through `allocator` into `outputs`. Throws ArgumentError
  // naming the parameter, the dimension, what was expected and what came. On success every
  // symbol slot is bound and every tensor param's data pointer is set.
  void bind(std::span<const Arg> args, BoundCall& bound, const OutputAllocator& allocator,
            std::vector<Tensor>& outputs) const;

  const Program& program() const { return program_; }
  const std::vector<int>& out_idx() const { return out_idx_; }
  int num_inputs() const { return static_cast<int>(program_.params.size() - out_idx_.size()); }

 private:
  struct Plan;       // the precomputed list of checks
  Program program_;  // a copy: no caller's Program has to outlive the Binder
  std::vector<int> out_idx_;
  int32_t expected_device_type_;
  std::vector<std::string> symbols_;
  std::shared_ptr<const Plan> plan_;
};

}  // namespace tilejit::detail
