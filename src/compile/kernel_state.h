// What a Kernel handle shares: the artifact, the binder built from its Program, and the
// loaded executor. Immutable after construction; calls read it from many threads.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"
#include "call/binder.h"
#include "tilejit/kernel.h"

namespace tilejit::detail {

struct KernelState {
  CompiledArtifact artifact;
  std::string cache_key;
  const Backend* backend = nullptr;
  std::unique_ptr<Binder> binder;      // holds its own copy of artifact.program
  std::unique_ptr<Executor> executor;  // refers to *binder
};

// The only way to a Kernel's state, kept out of the public API: the Python module, the CLI,
// benchmarks and tests reach the Binder and Executor through kernel_state().
struct KernelAccess {
  static const KernelState& state(const Kernel& kernel) { return *kernel.state_; }
  static Kernel make(std::shared_ptr<const KernelState> state) { return Kernel(std::move(state)); }
};

// The state of a non-empty Kernel.
inline const KernelState& kernel_state(const Kernel& kernel) {
  return KernelAccess::state(kernel);
}

// Loads `artifact` with its backend into a Kernel.
Kernel make_kernel(CompiledArtifact artifact, std::string cache_key);

}  // namespace tilejit::detail
