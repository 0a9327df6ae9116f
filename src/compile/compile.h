// compile() internals shared by par_compile, jit, the CLI and the Python module: option
// resolution (explicit, else environment, else "auto") and a compile that reports where the
// Kernel came from.
#pragma once

#include <string>
#include <string_view>

#include "backend/backend.h"
#include "options/options.h"
#include "tilejit/kernel.h"

namespace tilejit::detail {

// Applies CompileOptions over the environment (TILELANG_TARGET, TILELANG_EXECUTION_BACKEND,
// TILELANG_VERBOSE) and the Program's own defaults: the target kind follows
// Program::language when "auto", the backend's resolve_target fills the arch, out_idx is
// normalized (negatives from the end, ascending). Throws ArgumentError naming the option.
ResolvedOptions resolve_options(const Program& program, const CompileOptions& options);

// The cache key compile() would use (src/cache/key.h), without building anything.
std::string compile_cache_key(const Program& program, const CompileOptions& options);

enum class CompileSource { kMemoryCache, kDiskCache, kBuilt };

struct CompileOutcome {
  Kernel kernel;
  CompileSource source = CompileSource::kBuilt;
};

// compile() with the source of the Kernel reported (par_compile counts cache hits).
// `placement` says where an in-process compiler (NVRTC) runs when the Kernel must be built.
CompileOutcome compile_with_outcome(const Program& program, const CompileOptions& options,
                                    CompilerPlacement placement = CompilerPlacement::kInProcess);

}  // namespace tilejit::detail
