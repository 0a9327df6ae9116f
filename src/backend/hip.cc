// The hip backend (execution_backend "hip"): the Program's HIP source and its generated host
// wrapper (codegen/wrapper.h) compiled by hipcc into one shared library, called through its
// call_packed entry. It builds only where hipcc and a ROCm device exist; everywhere else
// compile() fails with NotAvailableError before doing any work.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/backend.h"
#include "backend/packed_call.h"
#include "backend/shared_library.h"
#include "backend/tensor_memory.h"
#include "codegen/wrapper.h"
#include "tilejit/errors.h"
#include "toolchain/toolchain.h"

namespace tilejit::detail {
namespace {

constexpr auto kCompileTimeout = std::chrono::seconds(600);
constexpr const char* kDeviceSourceName = kHipDeviceSourceFile;
constexpr const char* kHostSourceName = "host.hip";

// hipcc, when this machine can also run what it builds (the ROCm kernel driver's /dev/kfd).
std::optional<std::filesystem::path> usable_hipcc(std::string* why) {
  std::optional<std::filesystem::path> hipcc = find_program("hipcc");
  if (!hipcc && std::filesystem::exists("/opt/rocm/bin/hipcc")) hipcc = "/opt/rocm/bin/hipcc";
  if (!hipcc) {
    *why = "hipcc is not installed (looked on PATH and in /opt/rocm/bin)";
    return std::nullopt;
  }
  if (!std::filesystem::exists("/dev/kfd")) {
    *why = "no ROCm device is present (/dev/kfd is missing)";
    return std::nullopt;
  }
  return hipcc;
}

std::filesystem::path require_hipcc() {
  std::string why;
  if (auto hipcc = usable_hipcc(&why)) return *hipcc;
  throw NotAvailableError(fmt::format("HIP is not available on this machine: {}", why));
}

// Runs a loaded library on the HIP runtime's current device (device 0 unless the caller's
// thread selected another): init() once, then call_packed.
class HipExecutor final : public Executor {
 public:
  HipExecutor(SharedLibrary library, const Program& program, const Binder& binder)
      : library_(std::move(library)),
        program_name_(program.name),
        plan_(program, binder, "hip"),
        init_(reinterpret_cast<InitFn>(library_.symbol("init"))),
        call_packed_(reinterpret_cast<CallPackedFn>(library_.symbol("call_packed"))),
        get_last_error_(reinterpret_cast<GetLastErrorFn>(library_.symbol("get_last_error"))) {}

  void launch(const BoundCall& call, StreamRef stream) const override {
    if (!initialized_.load(std::memory_order_acquire)) [[unlikely]] {
      initialize();
    }
    PackedCallPlan::Storage storage;
    if (call_packed_(plan_.fill(call, storage), stream.handle()) != 0) [[unlikely]] {
      throw Error(fmt::format("{}: {}", program_name_, get_last_error_()));
    }
  }

  // tilejit allocates no ROCm memory: a HIP call takes its outputs from the caller.
  Tensor allocate_output(DataType /*dtype*/, std::span<const int64_t> /*shape*/,
                         Device device) const override {
    refuse_tensor_device(device);
  }

 private:
  using InitFn = int (*)();
  using CallPackedFn = int (*)(void* const*, void*);
  using GetLastErrorFn = const char* (*)();

  void initialize() const {
    std::lock_guard lock(init_mutex_);
    if (initialized_.load(std::memory_order_relaxed)) return;
    if (init_() != 0) {
      throw Error(fmt::format("{}: init() failed: {}", program_name_, get_last_error_()));
    }
    initialized_.store(true, std::memory_order_release);
  }

  SharedLibrary library_;
  std::string program_name_;
  PackedCallPlan plan_;
  InitFn init_;
  CallPackedFn call_packed_;
  GetLastErrorFn get_last_error_;
  mutable std::atomic<bool> initialized_{false};
  mutable std::mutex init_mutex_;
};

class HipBackend final : public Backend {
 public:
  std::string_view name() const override { return "hip"; }
  int32_t device_type() const override { return dlpack::kDLROCM; }

  Target resolve_target(const Target& requested) const override {
    if (requested.kind != "hip" && requested.kind != "auto") {
      throw ArgumentError(
          fmt::format("the hip backend compiles for HIP targets, not '{}'", requested.str()));
    }
    if (requested.is_auto_arch()) {
      std::string why;
      if (!usable_hipcc(&why)) {
        throw NotAvailableError(fmt::format("HIP is not available on this machine: {}", why));
      }
      throw NotAvailableError(
          "the hip backend cannot detect the device's architecture: name one, e.g. target "
          "\"hip -mcpu=gfx90a\"");
    }
    return Target{"hip", requested.arch};
  }

  std::string toolchain_fingerprint(const Target& target) const override {
    const std::filesystem::path hipcc = require_hipcc();
    const ProcessResult version =
        run_process({hipcc.string(), "--version"}, std::chrono::seconds(60));
    return fmt::format("hipcc [{}] target {}", version.output, target.str());
  }

  CompiledArtifact build(const Program& program, const ResolvedOptions& options) const override {
    const std::filesystem::path hipcc = require_hipcc();
    if (program.language != Language::kHip) {
      throw ArgumentError(fmt::format("the hip backend compiles HIP sources; program '{}' is {}",
                                      program.name, to_string(program.language)));
    }
    const std::string host_source = generate_hip_wrapper(program, kDeviceSourceName);
    TempDir dir("tilejit-hip");
    write_file(dir.path() / kDeviceSourceName, program.source);
    write_file(dir.path() / kHostSourceName, host_source);
    const std::filesystem::path library = dir.path() / "libkernel.so";
    std::vector<std::string> argv = {hipcc.string(), "-shared",
                                     "-fPIC",        "-std=c++17",
                                     "-O3",          "--offload-arch=" + options.target.arch};
    append_program_flags(argv, program, options);
    const std::filesystem::path dependency_file = dir.path() / "dependencies.d";
    argv.insert(argv.end(), {"-MD", "-MF", dependency_file.string(), "-o", library.string(),
                             (dir.path() / kHostSourceName).string()});
    const ProcessResult result = run_process(argv, kCompileTimeout);
    if (result.timed_out || result.exit_code != 0) {
      throw CompileError(fmt::format("{}: hipcc failed on {}", program.name, kDeviceSourceName),
                         result.output, argv, kDeviceSourceName);
    }

    return library_artifact("hip", options.target, program, options,
                            {library, dependency_file, host_source, argv, result.output});
  }

  std::unique_ptr<Executor> load(const CompiledArtifact& artifact,
                                 const Binder& binder) const override {
    require_hipcc();
    return std::make_unique<HipExecutor>(load_artifact_library(artifact, "hip"), artifact.program,
                                         binder);
  }
};

}  // namespace

const Backend& hip_backend() {
  static const HipBackend backend;
  return backend;
}

}  // namespace tilejit::detail
