// The metal backend (execution_backend "metal"): the seed's Metal wrapper passes the source
// through unchanged (codegen/wrapper.h); running it needs Apple's Metal runtime, which a Linux
// build of tilejit does not have. Every step that would need it says so.
#include <fmt/format.h>

#include "backend/backend.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

[[noreturn]] void not_available() {
  throw NotAvailableError("Metal is not available on this machine");
}

class MetalBackend final : public Backend {
 public:
  std::string_view name() const override { return "metal"; }
  int32_t device_type() const override { return dlpack::kDLMetal; }

  Target resolve_target(const Target& requested) const override {
    if (requested.kind != "metal" && requested.kind != "auto") {
      throw ArgumentError(fmt::format("the metal backend compiles for target \"metal\", not '{}'",
                                      requested.str()));
    }
    return Target{"metal", ""};
  }

  std::string toolchain_fingerprint(const Target& /*target*/) const override { not_available(); }

  CompiledArtifact build(const Program& /*program*/,
                         const ResolvedOptions& /*options*/) const override {
    not_available();
  }

  std::unique_ptr<Executor> load(const CompiledArtifact& /*artifact*/,
                                 const Binder& /*binder*/) const override {
    not_available();
  }
};

}  // namespace

const Backend& metal_backend() {
  static const MetalBackend backend;
  return backend;
}

}  // namespace tilejit::detail
