// The launch plan of a CUDA Program: everything that can be decided at load time, so that a
// call only evaluates expressions, copies arguments into a stack buffer and calls the driver.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "call/binder.h"
#include "cuda/driver_api.h"
#include "ir/compiled_expr.h"
#include "ir/signature.h"
#include "tilejit/program.h"

namespace tilejit::cuda {

inline constexpr int kMaxKernelArgs = 128;
inline constexpr uint32_t kMaxArgBytes = 4096;
inline constexpr int kMaxTmaDescriptors = 16;

// Where one kernel argument's bytes come from and where they go in the argument buffer.
struct ArgSlot {
  detail::KernelArg::Source source = detail::KernelArg::Source::kParam;
  detail::KernelArg::Kind kind = detail::KernelArg::Kind::kPointer;
  int index = -1;       // param index, symbol slot, or TMA slot (the executor's numbering)
  uint32_t bytes = 0;   // bytes copied into the buffer (0 for a TMA map: passed in place)
  uint32_t offset = 0;  // naturally aligned offset in the buffer
};

// The argument buffer layout of one launch, computed from the kernel's signature: each value
// naturally aligned, a TMA descriptor passed by pointer to the call's encoded map.
struct ArgLayout {
  std::vector<ArgSlot> slots;
  uint32_t total_bytes = 0;
};
// `symbol_slot` maps a symbol name to its Binder slot; `tma_slot` a descriptor index to the
// executor's slot. Throws ProgramError for a value type the plan cannot pass.
ArgLayout layout_args(const Program& program, const Launch& launch,
                      const std::vector<detail::KernelArg>& args,
                      const std::function<int(std::string_view)>& symbol_slot,
                      const std::function<int(int)>& tma_slot);

struct L2WindowPlan {
  int param = -1;  // the tensor whose data the window starts at
  detail::CompiledExpr num_bytes;
  float hit_ratio = 1.0f;
  CUaccessProperty hit_property = CU_ACCESS_PROPERTY_PERSISTING;
  CUaccessProperty miss_property = CU_ACCESS_PROPERTY_STREAMING;
};

struct LaunchPlan {
  std::string kernel;
  std::array<detail::CompiledExpr, 3> grid;
  std::array<detail::CompiledExpr, 3> block;
  detail::CompiledExpr dynamic_smem;
  std::array<uint32_t, 3> cluster{1, 1, 1};
  bool cooperative = false;
  bool pdl = false;
  ArgLayout layout;
  std::vector<int> tma_slots;  // the TMA slots this launch passes
  bool has_l2_window = false;
  L2WindowPlan l2;
};

// The plans of every launch, in order, and the TMA descriptors they use (each once, in order
// of first use: the seed's two-pass de-duplication). Throws ProgramError for what cannot be
// launched (an unknown property, more than one L2 window, too many arguments).
struct ProgramPlan {
  std::vector<LaunchPlan> launches;
  std::vector<int> tma_descriptors;  // Program::tma_descriptors indices, one per TMA slot
};
ProgramPlan build_program_plan(const Program& program, const detail::Binder& binder);

// A readable rendering of the plan (the nvrtc artifact's host_source): per launch, the grid,
// block, shared memory, attributes, argument layout, TMA encodes and L2 window.
std::string render_program_plan(const Program& program);

// Fills `buffer` and `pointers` (kernelParams) for one launch of `call`. `maps` holds the
// call's encoded TMA maps, indexed by TMA slot. No allocation.
void pack_args(const ArgLayout& layout, const detail::BoundCall& call, const CUtensorMap* maps,
               std::byte* buffer, void** pointers);

CUaccessProperty parse_access_property(std::string_view text, std::string_view context);

}  // namespace tilejit::cuda
