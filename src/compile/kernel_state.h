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

// Loads `artifact` with its backend into a Kernel.
Kernel make_kernel(CompiledArtifact artifact, std::string cache_key);

}  // namespace tilejit::detail
