// Kernel: a loaded artifact behind a shared, immutable KernelState.
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "cache/disk_cache.h"
#include "compile/kernel_state.h"
#include "tilejit/errors.h"
#include "tilejit/kernel.h"

namespace tilejit {
namespace {

// The outputs of a call that brings no allocator: its backend's (Executor::allocate_output).
class ExecutorAllocator final : public OutputAllocator {
 public:
  explicit ExecutorAllocator(const detail::Executor& executor) : executor_(executor) {}
  Tensor allocate(DataType dtype, std::span<const int64_t> shape, Device device) const override {
    return executor_.allocate_output(dtype, shape, device);
  }

 private:
  const detail::Executor& executor_;
};

const detail::KernelState& checked(const std::shared_ptr<const detail::KernelState>& state) {
  if (state == nullptr) throw Error("use of an empty Kernel (default-constructed or moved from)");
  return *state;
}

}  // namespace

namespace detail {

Kernel make_kernel(CompiledArtifact artifact, std::string cache_key) {
  auto state = std::make_shared<KernelState>();
  state->artifact = std::move(artifact);
  state->cache_key = std::move(cache_key);
  state->backend = &backend_named(state->artifact.backend);
  // The binder and executor refer into the state's own artifact, which never moves again.
  const Program& program = state->artifact.program;
  state->binder = std::make_unique<Binder>(program, program.out_idx, state->backend->device_type());
  state->executor = state->backend->load(state->artifact, *state->binder);
  return KernelAccess::make(std::move(state));
}

}  // namespace detail

Kernel Kernel::load(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw Error(fmt::format(
        "Kernel::load: '{}' is not a directory (expected one written by CompiledArtifact::save, "
        "or a disk-cache entry)",
        dir.string()));
  }
  try {
    // A cache entry carries every file's SHA-256: verify before trusting it.
    if (detail::DiskCache::holds_entry(dir)) {
      detail::DiskCache::Entry entry = detail::DiskCache::read_entry(dir);
      return detail::make_kernel(std::move(entry.artifact), std::move(entry.key));
    }
    return detail::make_kernel(CompiledArtifact::load(dir), "");
  } catch (const NotAvailableError&) {
    throw;  // a well-formed artifact this machine cannot run (a cubin and no GPU)
  } catch (const Error& e) {
    throw Error(fmt::format("Kernel::load('{}'): {}", dir.string(), e.what()));
  }
}

std::vector<Tensor> Kernel::operator()(std::span<const Arg> args, StreamRef stream,
                                       const OutputAllocator* allocator) const {
  const detail::KernelState& s = checked(state_);
  const ExecutorAllocator default_allocator(*s.executor);
  detail::BoundCall bound;
  std::vector<Tensor> outputs;
  s.binder->bind(args, bound, allocator != nullptr ? *allocator : default_allocator, outputs);
  s.executor->launch(bound, stream);
  return outputs;
}

const std::vector<KernelParam>& Kernel::params() const {
  return checked(state_).artifact.program.params;
}
const std::vector<int>& Kernel::out_idx() const {
  return checked(state_).binder->out_idx();
}
const Program& Kernel::program() const {
  return checked(state_).artifact.program;
}
const CompiledArtifact& Kernel::artifact() const {
  return checked(state_).artifact;
}
const std::string& Kernel::cache_key() const {
  return checked(state_).cache_key;
}
const std::string& Kernel::get_host_source() const {
  return checked(state_).artifact.host_source;
}
const std::string& Kernel::get_device_source() const {
  return checked(state_).artifact.device_source;
}

GlobalSymbol Kernel::get_global(std::string_view name, int device_id) const {
  const detail::KernelState& s = checked(state_);
  const int32_t type = s.backend->device_type();
  return s.executor->global(name, Device{type, type == dlpack::kDLCPU ? 0 : device_id});
}

std::string Kernel::get_kernel_source(bool kernel_only) const {
  const CompiledArtifact& a = checked(state_).artifact;
  if (kernel_only || a.host_source.empty()) return a.device_source;
  return a.device_source + "\n" + a.host_source;
}

}  // namespace tilejit
