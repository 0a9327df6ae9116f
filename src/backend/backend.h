// The Backend interface: how a Program becomes a CompiledArtifact, and an artifact an
// Executor. One implementation per execution_backend; registry in registry.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "call/binder.h"
#include "options/options.h"
#include "tilejit/kernel.h"

namespace tilejit::detail {

// Runs the launches of one loaded artifact. launch() is the hot path: no heap, no locks.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual void launch(const BoundCall& call, StreamRef stream) const = 0;
  // A module global (`__constant__` / `__device__` variable, a C global for cpu) on `device`;
  // throws ArgumentError naming it when the module has no such symbol. The default: a backend
  // whose modules have no globals tilejit can reach.
  virtual GlobalSymbol global(std::string_view name, Device device) const;
  // One output of a call (the default OutputAllocator, src/compile/kernel.cc): compact
  // row-major memory on `device`, which has the backend's device type (tensor_memory.h): host
  // memory for cpu, CUDA memory for nvrtc and nvcc. Pure, so that a new backend has to choose.
  virtual Tensor allocate_output(DataType dtype, std::span<const int64_t> shape,
                                 Device device) const = 0;
};

// Dynamic parallelism needs relocatable device code linked with the device runtime
// (cudadevrt), which neither CUDA backend builds: a flag asking for it (-rdc=true, -dc,
// -lcudadevrt...) is an ArgumentError at compile time that says so and what to do instead.
void refuse_relocatable_device_code(const Program& program, const std::vector<std::string>& flags);

// The artifact's metadata key that records the mangled name a CUDA backend found for a launch's
// kernel (one named by a C++ name: a template instantiation, a kernel without extern "C").
std::string lowered_name_key(std::string_view kernel);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // dlpack::kDLCPU or kDLCUDA: what the Binder accepts for this backend's tensors.
  virtual int32_t device_type() const = 0;
  // Fills in what "auto" leaves open (the current device's sm_XY for CUDA); throws
  // NotAvailableError when it cannot.
  virtual Target resolve_target(const Target& requested) const = 0;
  // Every version that changes the binary: compiler versions, header digests, flags.
  virtual std::string toolchain_fingerprint(const Target& target) const = 0;
  // What picks this backend's toolchain for `target`, found without running or loading it
  // (environment variables, programs looked up on PATH). With one, compile() records the
  // fingerprint in the disk cache and a fresh process reuses it while the paths
  // toolchain_files() listed are unchanged (cache/toolchain_record.h). nullopt, the default:
  // probed in every process.
  virtual std::optional<std::string> toolchain_selector(const Target& /*target*/) const {
    return std::nullopt;
  }
  // Called right after toolchain_fingerprint(target): every path whose state that fingerprint
  // came from (executables, libraries, directories searched, paths whose absence mattered).
  virtual std::vector<std::string> toolchain_files(const Target& /*target*/) const { return {}; }
  virtual CompiledArtifact build(const Program& program, const ResolvedOptions& options) const = 0;
  // `artifact` and `binder` outlive the executor (the Kernel's state owns all three):
  // executors compile their Exprs against the binder's symbols and may refer into the artifact.
  virtual std::unique_ptr<Executor> load(const CompiledArtifact& artifact,
                                         const Binder& binder) const = 0;
};

// The registry: "nvrtc", "nvcc", "cpu", "hip", "metal". Unknown names are ArgumentError.
const Backend& backend_named(std::string_view name);
// "auto" for a target kind: cuda -> nvrtc (nvcc when NVRTC is missing), c -> cpu, ...
std::string_view default_backend_for(const Target& target);
// The backend that runs an execution_backend a user asked for: "" and "auto" as
// default_backend_for, our names as themselves, the seed's (docs/seed-compat.md) mapped:
// "tvm_ffi" / "cython" / "dlpack" -> the target's host-wrapper backend (cuda: nvcc, c: cpu,
// hip: hip), "torch" -> metal. "cutedsl", "torch" for a non-Metal target and unknown names
// throw ArgumentError saying what to use.
std::string_view backend_for(std::string_view requested, const Target& target);

}  // namespace tilejit::detail
