// The nvcc backend (execution_backend "nvcc"): nvcc builds the Program's CUDA source alone into
// a cubin (as TileLang's tvm_ffi adapter does), which is embedded in the generated host wrapper
// (codegen/wrapper.h); nvcc then compiles the wrapper, which has no device code, into a shared
// library. Two steps rather than one translation unit because nvcc's host pass over a device
// source that includes CUTLASS/cute costs twice the device build (docs/PERFORMANCE.md). The
// library is loaded from memory, its init() runs once per device, and every call goes through
// its call_packed entry on the caller's stream.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
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
#include "cuda/cubin_symbols.h"
#include "cuda/driver.h"
#include "cuda/nvrtc.h"
#include "ir/signature.h"
#include "tilejit/errors.h"
#include "toolchain/toolchain.h"

namespace tilejit::detail {
namespace {

// nvcc on a large kernel can take minutes; a hung compiler must not hang the caller forever.
constexpr auto kCompileTimeout = std::chrono::seconds(600);
// The names the sources get in the build directory and in an export (src/compile/export.cc).
constexpr const char* kDeviceSourceName = kCudaDeviceSourceFile;
constexpr const char* kHostSourceName = "host.cu";
constexpr const char* kDeviceImageName = "kernel.cubin";

// nvcc and the host compiler it drives, found once per process.
struct NvccToolchain {
  std::filesystem::path nvcc;
  std::string version;  // `nvcc --version`, whole: release and build lines
  HostCompiler host;
};

std::filesystem::path find_nvcc() {
  // The toolkit whose headers tilejit already uses (CUDA_HOME, CUDA_PATH, or the one next to
  // libnvrtc) comes first, so that nvcc and NVRTC agree; then PATH.
  for (const std::filesystem::path& include : cuda::cuda_include_dirs()) {
    const std::filesystem::path candidate = include.parent_path() / "bin" / "nvcc";
    if (std::filesystem::exists(candidate)) return candidate;
  }
  if (auto found = find_program("nvcc")) return *found;
  throw NotAvailableError(
      "the nvcc backend needs nvcc, and none was found in the CUDA toolkit (CUDA_HOME, "
      "CUDA_PATH) or on PATH: install the CUDA toolkit, or use execution_backend=\"nvrtc\"");
}

const NvccToolchain& toolchain() {
  static const NvccToolchain detected = [] {
    NvccToolchain t;
    t.nvcc = find_nvcc();
    const ProcessResult result =
        run_process({t.nvcc.string(), "--version"}, std::chrono::seconds(60));
    if (result.exit_code != 0) {
      throw NotAvailableError(
          fmt::format("'{} --version' failed: {}", t.nvcc.string(), result.output));
    }
    t.version = result.output;
    while (!t.version.empty() && (t.version.back() == '\n' || t.version.back() == '\r')) {
      t.version.pop_back();
    }
    t.host = HostCompiler::detect();
    return t;
  }();
  return detected;
}

// The lines of a compiler log that say what went wrong: those mentioning "error", else the
// first lines.
std::string error_summary(std::string_view log) {
  constexpr size_t kMaxLines = 6;
  std::vector<std::string_view> lines;
  std::vector<std::string_view> errors;
  while (!log.empty()) {
    const size_t end = log.find('\n');
    const std::string_view line = log.substr(0, end);
    log = end == std::string_view::npos ? std::string_view() : log.substr(end + 1);
    if (line.empty()) continue;
    lines.push_back(line);
    if (line.find("error") != std::string_view::npos) errors.push_back(line);
  }
  const auto& chosen = errors.empty() ? lines : errors;
  std::string text;
  for (size_t i = 0; i < chosen.size() && i < kMaxLines; ++i) {
    if (i > 0) text += '\n';
    text += chosen[i];
  }
  return text;
}

// The device source as nvcc compiles it. A kernel template is in the cubin only once something
// instantiates it: NVRTC does for a name expression, nvcc for a use. A host-side table of the
// launched instantiations' addresses is that use; host code does not reach the cubin.
std::string instantiating_source(const Program& program) {
  std::vector<std::string> uses;
  for (const Launch& launch : program.launches) {
    const std::optional<KernelName> name = parse_kernel_name(launch.kernel);
    if (name && name->is_template_id) {
      uses.push_back(fmt::format("(const void*)&{}", launch.kernel));
    }
  }
  if (uses.empty()) return program.source;
  return fmt::format(
      "{}\n\n// tilejit: instantiates the launched kernel templates.\nnamespace {{\n"
      "[[maybe_unused]] const void* const tj_instantiated_kernels[] = {{{}}};\n}}  // namespace\n",
      program.source, fmt::join(uses, ", "));
}

// The cubin's symbol for each launched kernel that has no C linkage (needs_lowered_name, as on
// nvrtc): the one kernel whose demangled name is the launch's C++ name. Anything else is a
// ProgramError now, listing the cubin's kernels, rather than a failure at the first call.
std::map<std::string, std::string> kernel_symbols(const Program& program, std::string_view image) {
  std::map<std::string, std::string> symbols;
  std::optional<std::vector<cuda::CubinFunction>> functions;  // read when a launch needs them
  for (const Launch& launch : program.launches) {
    if (symbols.count(launch.kernel) != 0 || !needs_lowered_name(program, launch)) continue;
    if (!functions) functions = cuda::cubin_functions(image);
    std::vector<std::string> matches;
    std::vector<std::string> kernels;
    for (const cuda::CubinFunction& function : *functions) {
      if (cuda::same_kernel_name(function.demangled, launch.kernel)) {
        matches.push_back(function.symbol);
      }
      kernels.push_back(fmt::format("'{}'", function.demangled));
    }
    if (matches.size() == 1) {
      symbols.emplace(launch.kernel, matches.front());
      continue;
    }
    throw ProgramError(fmt::format(
        "{}: the launch of kernel '{}' matches {} of the kernels nvcc built ({}); expected "
        "exactly one, named as the demangled names spell it (template arguments included, e.g. "
        "'__half' for half)",
        program.name, launch.kernel, matches.empty() ? "none" : std::to_string(matches.size()),
        kernels.empty() ? "there are none" : fmt::format("{}", fmt::join(kernels, ", "))));
  }
  return symbols;
}

// Runs a loaded library: init() once per device, then call_packed for every call.
class NvccExecutor final : public Executor {
 public:
  NvccExecutor(SharedLibrary library, const Program& program, const Binder& binder)
      : library_(std::move(library)),
        program_name_(program.name),
        plan_(program, binder, "nvcc"),
        init_(reinterpret_cast<InitFn>(library_.symbol("init"))),
        call_packed_(reinterpret_cast<CallPackedFn>(library_.symbol("call_packed"))),
        get_last_error_(reinterpret_cast<GetLastErrorFn>(library_.symbol("get_last_error"))),
        get_global_(reinterpret_cast<GetGlobalFn>(library_.find_symbol("get_global"))) {}

  void launch(const BoundCall& call, StreamRef stream) const override {
    const cuda::DriverApi& api = cuda::driver();
    const cuda::DeviceInfo& device = cuda::device_info(call.device.id);
    // The library's driver launches on the default stream and its CUDA runtime (init(), L2
    // windows) work in the context current on the thread: the device's primary context, which
    // frameworks share.
    const cuda::ScopedContext context(api, device);
    if (!initialized_[static_cast<size_t>(device.ordinal)].load(std::memory_order_acquire))
        [[unlikely]] {
      initialize(device.ordinal);
    }
    PackedCallPlan::Storage storage;
    if (call_packed_(plan_.fill(call, storage), stream.handle()) != 0) [[unlikely]] {
      // Not a CUresult: the library's message carries the CUDA error's name.
      throw CudaError(fmt::format("{}: {}", program_name_, get_last_error_()), -1);
    }
  }

  Tensor allocate_output(DataType dtype, std::span<const int64_t> shape,
                         Device device) const override {
    return cuda_tensor(dtype, shape, device);
  }

  GlobalSymbol global(std::string_view name, Device device) const override {
    // Libraries built before get_global existed lack the entry point.
    if (get_global_ == nullptr) {
      throw ArgumentError(fmt::format(
          "get_global('{}'): the nvcc library of program '{}' predates get_global; expected a "
          "rebuild (clear its cache entry)",
          name, program_name_));
    }
    const cuda::DriverApi& api = cuda::driver();
    const cuda::ScopedContext context(api, cuda::device_info(device.id));
    void* address = nullptr;
    size_t bytes = 0;
    const std::string text(name);
    const int status = get_global_(text.c_str(), &address, &bytes);
    if (status == 1) {
      throw ArgumentError(fmt::format(
          "get_global: program '{}' has no __device__ or __constant__ variable '{}' (a variable "
          "in a namespace, or with C++ linkage in a class, has a mangled name)",
          program_name_, name));
    }
    if (status != 0) {
      throw CudaError(fmt::format("{}: {}", program_name_, get_last_error_()), -1);
    }
    return GlobalSymbol{address, bytes, device};
  }

 private:
  using InitFn = int (*)();
  using CallPackedFn = int (*)(void* const*, void*);
  using GetLastErrorFn = const char* (*)();
  using GetGlobalFn = int (*)(const char*, void**, size_t*);

  // init() sets per-device function attributes (dynamic shared memory, cluster sizes), so it
  // runs once on each device, with that device's context current. Serialized: it is rare.
  void initialize(int ordinal) const {
    std::lock_guard lock(init_mutex_);
    std::atomic<bool>& done = initialized_[static_cast<size_t>(ordinal)];
    if (done.load(std::memory_order_relaxed)) return;
    if (init_() != 0) {
      throw CudaError(fmt::format("{}: init() on device {} failed: {}", program_name_, ordinal,
                                  get_last_error_()),
                      -1);
    }
    done.store(true, std::memory_order_release);
  }

  SharedLibrary library_;
  std::string program_name_;
  PackedCallPlan plan_;
  InitFn init_;
  CallPackedFn call_packed_;
  GetLastErrorFn get_last_error_;
  GetGlobalFn get_global_;  // null in libraries built before it existed
  mutable std::array<std::atomic<bool>, cuda::kMaxDevices> initialized_{};
  mutable std::mutex init_mutex_;
};

class NvccBackend final : public Backend {
 public:
  std::string_view name() const override { return "nvcc"; }
  int32_t device_type() const override { return dlpack::kDLCUDA; }

  // The same resolution as the nvrtc backend (the current device's sm_XY for "auto"), so that
  // switching backends never changes the architecture.
  Target resolve_target(const Target& requested) const override {
    if (requested.kind != "cuda" && requested.kind != "auto") {
      throw ArgumentError(
          fmt::format("the nvcc backend compiles for CUDA targets, not '{}'", requested.str()));
    }
    return backend_named("nvrtc").resolve_target(requested);
  }

  std::string toolchain_fingerprint(const Target& target) const override {
    const NvccToolchain& t = toolchain();
    return fmt::format("nvcc [{}] host [{}] target {} device_header {}", t.version, t.host.version,
                       target.str(), cuda::device_header_digest());
  }

  // Runs one nvcc step of build(); a failure names `source` and keeps nvcc's whole log.
  static std::string run_nvcc(const Program& program, const std::vector<std::string>& argv,
                              const ResolvedOptions& options, const char* source) {
    if (options.verbose) fmt::print(stderr, "tilejit: {}\n", fmt::join(argv, " "));
    const ProcessResult result = run_process(argv, kCompileTimeout);
    if (result.timed_out || result.exit_code != 0) {
      const std::string what = result.timed_out
                                   ? fmt::format("timed out after {} s", kCompileTimeout.count())
                                   : error_summary(result.output);
      throw CompileError(fmt::format("{}: nvcc failed on {}:\n{}", program.name, source, what),
                         result.output, argv, source);
    }
    return result.output;
  }

  CompiledArtifact build(const Program& program, const ResolvedOptions& options) const override {
    if (program.language != Language::kCuda) {
      throw ArgumentError(fmt::format("the nvcc backend compiles CUDA sources; program '{}' is {}",
                                      program.name, to_string(program.language)));
    }
    refuse_relocatable_device_code(program, options.compile_flags);
    // Generated first: a Program the wrapper cannot express fails before a slow compile.
    const std::string host_source = generate_cuda_wrapper(program, kDeviceSourceName);
    const NvccToolchain& t = toolchain();
    const HostCompiler host =
        options.host_compiler.empty() ? t.host : HostCompiler::named(options.host_compiler);
    const cuda::CudaArch arch = cuda::CudaArch::parse(options.target.arch);
    const std::string suffix = arch.arch_specific ? "a" : "";

    TempDir dir("tilejit-nvcc");
    const std::string device_source = instantiating_source(program);
    write_file(dir.path() / kDeviceSourceName, device_source);
    // The device header NVRTC gets from memory, on disk for nvcc: one source builds with both.
    std::filesystem::create_directories(dir.path() / "include" / "tilejit");
    write_file(dir.path() / "include" / cuda::kDeviceHeaderName, cuda::device_header_source());
    const std::filesystem::path image = dir.path() / kDeviceImageName;
    const std::filesystem::path library = dir.path() / "libkernel.so";

    // Step 1: the device source alone, to a cubin, listing the headers it read.
    std::vector<std::string> device_argv = {
        t.nvcc.string(),
        "--cubin",
        "-std=c++17",
        "-O3",
        "-ccbin",
        host.cxx_compiler,
        "-gencode",
        fmt::format("arch=compute_{}{},code=sm_{}{}", arch.number(), suffix, arch.number(), suffix),
        "-I" + (dir.path() / "include").string()};
    append_program_flags(device_argv, program, options);
    // NVRTC's -default-device makes unannotated functions device functions, which JIT mode
    // needs (TileLang's Programs carry it); nvcc compiles offline, has no such flag and needs
    // none.
    std::erase_if(device_argv, [](const std::string& flag) {
      return flag == "-default-device" || flag == "--device-as-default-execution-space";
    });
    // A standard among the Program's flags (TileLang's -std=c++20) replaces the default (the
    // first one, before them), which nvcc would otherwise warn about as a redefinition.
    if (std::count_if(device_argv.begin(), device_argv.end(), [](const std::string& flag) {
          return flag.starts_with("-std=") || flag.starts_with("--std=");
        }) > 1) {
      device_argv.erase(std::find(device_argv.begin(), device_argv.end(), "-std=c++17"));
    }
    // The headers come from the host compiler's preprocessing of the device side for cicc,
    // which the build runs anyway, and are those the cubin was built from. nvcc's own -MD would
    // run a second, host-side preprocessing of the whole source (CUTLASS/cute) for them, a
    // fifth of the device build (docs/PERFORMANCE.md). -Xcompiler splits its value at commas,
    // so the path must have none.
    const std::filesystem::path dependency_file = dir.path() / "dependencies.d";
    if (dependency_file.string().find(',') != std::string::npos) {
      throw Error(fmt::format(
          "{}: the nvcc backend's build directory {} contains a ',', which nvcc's -Xcompiler "
          "cannot pass on; expected a TMPDIR without commas",
          program.name, dir.path().string()));
    }
    device_argv.insert(device_argv.end(),
                       {"-Xcompiler", "-MD,-MF," + dependency_file.string(), "-o", image.string(),
                        (dir.path() / kDeviceSourceName).string()});
    const std::string device_log = run_nvcc(program, device_argv, options, kDeviceSourceName);

    // Kernels without C linkage are looked up by their mangled names, which only the cubin knows.
    const std::string cubin = read_file(image);
    const std::map<std::string, std::string> symbols = kernel_symbols(program, cubin);

    // Step 2: the host wrapper with the cubin embedded. It has no device code, so nvcc compiles
    // it as plain C++ (`-x c++`: no cudafe++ pass, a fifth of the time) and links the CUDA
    // runtime statically as for a .cu file.
    const std::string embedded_source =
        (symbols.empty() ? host_source
                         : generate_cuda_wrapper(program, kDeviceSourceName, symbols)) +
        embed_cuda_device_image(cubin, kDeviceSourceName);
    write_file(dir.path() / kHostSourceName, embedded_source);
    const std::vector<std::string> host_argv = {t.nvcc.string(),
                                                "-shared",
                                                "-Xcompiler",
                                                "-fPIC",
                                                "-std=c++17",
                                                "-O3",
                                                "-ccbin",
                                                host.cxx_compiler,
                                                "-o",
                                                library.string(),
                                                "-x",
                                                "c++",
                                                (dir.path() / kHostSourceName).string()};
    const std::string host_log = run_nvcc(program, host_argv, options, kHostSourceName);

    std::vector<std::string> command = device_argv;
    command.push_back("&&");
    command.insert(command.end(), host_argv.begin(), host_argv.end());
    CompiledArtifact artifact = library_artifact(
        "nvcc", options.target, program, options,
        {library, dependency_file, embedded_source, command, device_log + host_log});
    // What nvcc compiled, so that export's kernel.cu rebuilds the same cubin.
    artifact.device_source = device_source;
    artifact.metadata["nvcc"] = t.nvcc.string();
    artifact.metadata["nvcc_version"] = t.version;
    artifact.metadata["host_compiler"] = host.cxx_compiler;
    artifact.metadata["host_compiler_version"] = host.version;
    artifact.metadata["arch"] = arch.sm();
    for (const auto& [kernel, symbol] : symbols) {
      artifact.metadata[lowered_name_key(kernel)] = symbol;
    }
    return artifact;
  }

  std::unique_ptr<Executor> load(const CompiledArtifact& artifact,
                                 const Binder& binder) const override {
    return std::make_unique<NvccExecutor>(load_artifact_library(artifact, "nvcc"), artifact.program,
                                          binder);
  }
};

}  // namespace

const Backend& nvcc_backend() {
  static const NvccBackend backend;
  return backend;
}

}  // namespace tilejit::detail
