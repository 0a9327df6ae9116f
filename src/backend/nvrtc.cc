// The nvrtc backend: NVRTC (in process; in worker processes for par_compile) -> cubin (PTX when
// NVRTC predates the device), loaded context-independently with cuLibraryLoadData, launched
// from a precomputed plan in C++.
#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "backend/backend.h"
#include "backend/dependencies.h"
#include "backend/tensor_memory.h"
#include "cuda/driver.h"
#include "cuda/l2.h"
#include "cuda/launch.h"
#include "cuda/nvrtc.h"
#include "cuda/nvrtc_worker.h"
#include "cuda/tma.h"
#include "ir/signature.h"
#include "tilejit/errors.h"

namespace tilejit::detail {
namespace {

using namespace tilejit::cuda;

// A loaded CUlibrary; unloaded when the last Kernel using it goes away.
class Library {
 public:
  Library(const std::string& image, const std::string& name) : api_(&driver()) {
    check(
        api_->cuLibraryLoadData(&library_, image.data(), nullptr, nullptr, 0, nullptr, nullptr, 0),
        "cuLibraryLoadData", name);
  }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  ~Library() {
    if (library_ != nullptr) {
      api_->cuLibraryUnload(library_);  // nothing to do about a failure at teardown
    }
  }
  CUkernel kernel(const std::string& name) const {
    CUkernel kernel = nullptr;
    check(api_->cuLibraryGetKernel(&kernel, library_, name.c_str()), "cuLibraryGetKernel", name);
    return kernel;
  }
  // The address in the current context of a __device__ / __constant__ variable, and its size;
  // {0, 0} when the library has none of that name.
  std::pair<CUdeviceptr, size_t> global(const std::string& name) const {
    CUdeviceptr address = 0;
    size_t bytes = 0;
    CUresult result = api_->cuLibraryGetGlobal(&address, &bytes, library_, name.c_str());
    if (result == CUDA_ERROR_NOT_FOUND) return {0, 0};
    check(result, "cuLibraryGetGlobal", name);
    return {address, bytes};
  }

 private:
  const DriverApi* api_;
  CUlibrary library_ = nullptr;
};

// A block may use this much shared memory, static and dynamic together, without opting in.
constexpr int kDefaultSharedLimit = 48 * 1024;
constexpr int kMaxLaunches = 64;
constexpr int kNotQueried = -1;
constexpr uint32_t kPortableClusterSize = 8;

[[noreturn]] void bad_launch(const LaunchPlan& plan, const std::string& what) {
  throw ArgumentError(fmt::format("launch '{}': {}", plan.kernel, what));
}

// The loaded cubin and its kernels, in launch order; `symbols` are their names in the cubin.
struct LoadedProgram {
  LoadedProgram(const std::string& image, const std::string& name,
                const std::vector<std::string>& symbols)
      : api(driver()), library(image, name) {
    for (const std::string& symbol : symbols) {
      kernels.push_back(library.kernel(symbol));
    }
  }
  const DriverApi& api;
  Library library;
  std::vector<CUkernel> kernels;
};

// The driver is touched only at the first call: compiling (and caching, exporting) a CUDA
// Program works on a machine without one, and a call there throws NotAvailableError.
class NvrtcExecutor final : public Executor {
 public:
  NvrtcExecutor(const CompiledArtifact& artifact, const Binder& binder)
      : image_(artifact.binary), name_(artifact.program.name) {
    const Program& program = binder.program();
    plan_ = build_program_plan(program, binder);
    for (const LaunchPlan& launch : plan_.launches) {
      auto lowered = artifact.metadata.find(lowered_name_key(launch.kernel));
      symbols_.push_back(lowered != artifact.metadata.end() ? lowered->second : launch.kernel);
    }
    if (plan_.launches.size() > static_cast<size_t>(kMaxLaunches)) {
      throw ProgramError(
          fmt::format("program '{}' has {} launches; the nvrtc backend runs at most {}",
                      program.name, plan_.launches.size(), kMaxLaunches));
    }
    for (int descriptor : plan_.tma_descriptors) {
      tma_.push_back(std::make_unique<TmaSlot>(program, descriptor, binder));
    }
    const size_t slots = plan_.launches.size() * kMaxDevices;
    functions_ = std::make_unique<std::atomic<CUfunction>[]>(slots);
    static_smem_ = std::make_unique<std::atomic<int>[]>(slots);
    smem_limit_set_ = std::make_unique<std::atomic<int>[]>(slots);
    cluster_allowed_ = std::make_unique<std::atomic<bool>[]>(slots);
    for (size_t i = 0; i < slots; ++i) {
      functions_[i].store(nullptr, std::memory_order_relaxed);
      static_smem_[i].store(kNotQueried, std::memory_order_relaxed);
      smem_limit_set_[i].store(0, std::memory_order_relaxed);
      cluster_allowed_[i].store(false, std::memory_order_relaxed);
    }
  }

  Tensor allocate_output(DataType dtype, std::span<const int64_t> shape,
                         Device device) const override {
    return cuda_tensor(dtype, shape, device);
  }

  GlobalSymbol global(std::string_view name, Device device) const override {
    const LoadedProgram& loaded = load();
    const DeviceInfo& info = device_info(device.id);
    const ScopedContext context(loaded.api, info);
    auto [address, bytes] = loaded.library.global(std::string(name));
    if (address == 0) {
      throw ArgumentError(fmt::format(
          "get_global: program '{}' has no __device__ or __constant__ variable '{}' (a variable "
          "in a namespace, or with C++ linkage in a class, has a mangled name)",
          name_, name));
    }
    return GlobalSymbol{reinterpret_cast<void*>(address), bytes, device};
  }

  void launch(const BoundCall& call, StreamRef stream_ref) const override {
    const LoadedProgram& loaded = load();
    const DeviceInfo& device = device_info(call.device.id);
    const ScopedContext context(loaded.api, device);
    // Every launch's shape is evaluated and checked before the first one is issued, so that a
    // bad argument never leaves a program half run.
    LaunchShape shapes[kMaxLaunches];
    const size_t count = plan_.launches.size();
    for (size_t l = 0; l < count; ++l) {
      shapes[l] =
          evaluate(plan_.launches[l], call.symbols.data(), static_smem(loaded, l, device), device);
    }
    // Each descriptor once per call, however many launches take it (also checked first).
    CUtensorMap maps[kMaxTmaDescriptors];
    for (size_t i = 0; i < tma_.size(); ++i) {
      tma_[i]->prepare(call, &maps[i]);
    }
    CUstream stream = static_cast<CUstream>(stream_ref.handle());
    for (size_t l = 0; l < count; ++l) {
      launch_one(loaded, l, shapes[l], call, device, stream, maps);
    }
  }

 private:
  const LoadedProgram& load() const {
    if (const LoadedProgram* loaded = loaded_.load(std::memory_order_acquire)) [[likely]] {
      return *loaded;
    }
    std::lock_guard lock(load_mutex_);
    if (loaded_owner_ == nullptr) {
      loaded_owner_ = std::make_unique<LoadedProgram>(image_, name_, symbols_);
      loaded_.store(loaded_owner_.get(), std::memory_order_release);
    }
    return *loaded_owner_;
  }

  struct LaunchShape {
    int64_t grid[3];
    int64_t block[3];
    int64_t smem;         // dynamic shared memory
    int64_t static_smem;  // the kernel's own __shared__ variables
  };

  static LaunchShape evaluate(const LaunchPlan& plan, const int64_t* symbols, int static_smem,
                              const DeviceInfo& device) {
    LaunchShape shape;
    for (int d = 0; d < 3; ++d) {
      shape.grid[d] = plan.grid[d].eval(symbols);
      shape.block[d] = plan.block[d].eval(symbols);
    }
    shape.smem = plan.dynamic_smem.eval(symbols);
    shape.static_smem = static_smem;
    check_dims(plan, shape, device);
    return shape;
  }

  // The kernel's static shared memory on this device, asked of the driver at the first call
  // there. The default dynamic limit is 48 KB minus this, so it decides when to opt in.
  int static_smem(const LoadedProgram& loaded, size_t launch, const DeviceInfo& device) const {
    std::atomic<int>& bytes =
        static_smem_[launch * kMaxDevices + static_cast<size_t>(device.ordinal)];
    int value = bytes.load(std::memory_order_relaxed);
    if (value != kNotQueried) [[likely]] {
      return value;
    }
    check(loaded.api.cuKernelGetAttribute(&value, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
                                          loaded.kernels[launch], device.device),
          "cuKernelGetAttribute(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES)",
          plan_.launches[launch].kernel);
    bytes.store(value, std::memory_order_relaxed);  // the same value whichever thread stores
    return value;
  }

  // The launch's CUfunction in the device's primary context, which ScopedContext made current,
  // looked up at the first launch there. A launch of the CUkernel itself makes the driver find
  // that function every time (~0.1 us a launch on an H100: bench_launch, 2026-12-07). The
  // function lives as long as the library: tilejit keeps the primary context retained
  // (device_info), and resetting it (cuDevicePrimaryCtxReset, cudaDeviceReset) while kernels
  // of the process still use it is, as the driver documents, the caller's to avoid.
  CUfunction function(const LoadedProgram& loaded, size_t launch, const DeviceInfo& device) const {
    std::atomic<CUfunction>& slot =
        functions_[launch * kMaxDevices + static_cast<size_t>(device.ordinal)];
    CUfunction function = slot.load(std::memory_order_relaxed);
    if (function != nullptr) [[likely]] {
      return function;
    }
    check(loaded.api.cuKernelGetFunction(&function, loaded.kernels[launch]), "cuKernelGetFunction",
          plan_.launches[launch].kernel);
    slot.store(function, std::memory_order_relaxed);  // the same handle whichever thread stores
    return function;
  }

  // Launches through the primary context's function. Should the driver refuse it, the launch
  // is made again through the CUkernel, which the driver runs in the context of the launch's
  // stream: a stream of another context of the device (a green context's, say) launches as it
  // would without the shortcut, and a real error is the CUkernel launch's. A refused launch
  // enqueues nothing, so nothing runs twice.
  CUresult launch_kernel(const LoadedProgram& loaded, size_t launch, const DeviceInfo& device,
                         const CUlaunchConfig& config, void** pointers) const {
    CUresult result =
        loaded.api.cuLaunchKernelEx(&config, function(loaded, launch, device), pointers, nullptr);
    if (result != CUDA_SUCCESS) [[unlikely]] {
      result = loaded.api.cuLaunchKernelEx(
          &config, reinterpret_cast<CUfunction>(loaded.kernels[launch]), pointers, nullptr);
    }
    return result;
  }

  void launch_one(const LoadedProgram& loaded, size_t index, const LaunchShape& shape,
                  const BoundCall& call, const DeviceInfo& device, CUstream stream,
                  const CUtensorMap* maps) const {
    const LaunchPlan& plan = plan_.launches[index];
    const int64_t* grid = shape.grid;
    const int64_t* block = shape.block;
    const int64_t smem = shape.smem;
    if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0) {
      return;  // nothing to do: an empty problem (e.g. n == 0) launches no blocks
    }
    if (smem + shape.static_smem > kDefaultSharedLimit) {
      raise_smem_limit(loaded, index, static_cast<int>(smem), device);
    }
    if (plan.cluster[0] * plan.cluster[1] * plan.cluster[2] > kPortableClusterSize) {
      allow_non_portable_cluster(loaded, index, device);
    }

    alignas(16) std::byte buffer[kMaxArgBytes];
    void* pointers[kMaxKernelArgs];
    pack_args(plan.layout, call, maps, buffer, pointers);

    CUlaunchAttribute attributes[3];
    unsigned int count = 0;
    if (plan.cluster != std::array<uint32_t, 3>{1, 1, 1}) {
      CUlaunchAttribute& a = attributes[count++];
      a.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
      a.value.clusterDim = {plan.cluster[0], plan.cluster[1], plan.cluster[2]};
    }
    if (plan.cooperative) {
      CUlaunchAttribute& a = attributes[count++];
      a.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
      a.value.cooperative = 1;
    }
    if (plan.pdl) {
      CUlaunchAttribute& a = attributes[count++];
      a.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
      a.value.programmaticStreamSerializationAllowed = 1;
    }
    CUlaunchConfig config{};
    config.gridDimX = static_cast<unsigned int>(grid[0]);
    config.gridDimY = static_cast<unsigned int>(grid[1]);
    config.gridDimZ = static_cast<unsigned int>(grid[2]);
    config.blockDimX = static_cast<unsigned int>(block[0]);
    config.blockDimY = static_cast<unsigned int>(block[1]);
    config.blockDimZ = static_cast<unsigned int>(block[2]);
    config.sharedMemBytes = static_cast<unsigned int>(smem);
    config.hStream = stream;
    config.attrs = count != 0 ? attributes : nullptr;
    config.numAttrs = count;
    const DriverApi& api = loaded.api;
    const int64_t* symbols = call.symbols.data();

    if (!plan.has_l2_window) {
      check(launch_kernel(loaded, index, device, config, pointers), "cuLaunchKernelEx",
            plan.kernel);
      return;
    }
    PersistingWindow window;
    window.base = call.data[static_cast<size_t>(plan.l2.param)];
    int64_t bytes = plan.l2.num_bytes.eval(symbols);
    window.num_bytes = bytes > 0 ? static_cast<size_t>(bytes) : 0;
    window.hit_ratio = plan.l2.hit_ratio;
    window.hit_property = plan.l2.hit_property;
    window.miss_property = plan.l2.miss_property;
    L2Saved saved = l2_set_window(api, device, stream, window, plan.kernel.c_str());
    CUresult launched = launch_kernel(loaded, index, device, config, pointers);
    l2_reset_window(api, stream, saved, plan.kernel.c_str());
    check(launched, "cuLaunchKernelEx", plan.kernel);
  }

  static void check_dims(const LaunchPlan& plan, const LaunchShape& shape,
                         const DeviceInfo& device) {
    const int64_t* grid = shape.grid;
    const int64_t* block = shape.block;
    static constexpr int64_t kMaxGrid[3] = {(int64_t{1} << 31) - 1, 65535, 65535};
    static constexpr const char* kAxes[3] = {"x", "y", "z"};
    for (int d = 0; d < 3; ++d) {
      if (grid[d] < 0 || grid[d] > kMaxGrid[d]) [[unlikely]] {
        bad_launch(plan, fmt::format("grid.{} = {} ({}) is outside 1..{}", kAxes[d], grid[d],
                                     plan.grid[d].text(), kMaxGrid[d]));
      }
      if (block[d] < 1 || block[d] > 1024) [[unlikely]] {
        bad_launch(plan, fmt::format("block.{} = {} ({}) is outside 1..1024", kAxes[d], block[d],
                                     plan.block[d].text()));
      }
      if (grid[d] % plan.cluster[d] != 0) [[unlikely]] {
        bad_launch(plan, fmt::format("grid.{} = {} is not a multiple of the cluster's {}", kAxes[d],
                                     grid[d], plan.cluster[d]));
      }
    }
    if (block[0] * block[1] * block[2] > 1024) [[unlikely]] {
      bad_launch(plan, fmt::format("a block of {}x{}x{} threads exceeds 1024", block[0], block[1],
                                   block[2]));
    }
    if (shape.smem < 0) [[unlikely]] {
      bad_launch(plan, fmt::format("dynamic_smem = {} bytes ({}) is negative", shape.smem,
                                   plan.dynamic_smem.text()));
    }
    if (shape.smem + shape.static_smem > device.max_shared_per_block_optin) [[unlikely]] {
      bad_launch(plan, fmt::format("dynamic_smem = {} bytes ({}) plus the kernel's {} bytes of "
                                   "static shared memory exceed the {} bytes a block may use on "
                                   "device {} ({})",
                                   shape.smem, plan.dynamic_smem.text(), shape.static_smem,
                                   device.max_shared_per_block_optin, device.ordinal, device.name));
    }
  }

  // Raises the kernel's dynamic shared memory limit on this device to at least `bytes`. The
  // recorded high-water mark is read without a lock; the rare raise is serialized so that the
  // driver's value and the record can never disagree.
  void raise_smem_limit(const LoadedProgram& loaded, size_t launch, int bytes,
                        const DeviceInfo& device) const {
    std::atomic<int>& limit =
        smem_limit_set_[launch * kMaxDevices + static_cast<size_t>(device.ordinal)];
    if (bytes <= limit.load(std::memory_order_acquire)) [[likely]] {
      return;
    }
    std::lock_guard lock(attribute_mutex_);
    if (bytes <= limit.load(std::memory_order_relaxed)) {
      return;
    }
    check(loaded.api.cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes,
                                          loaded.kernels[launch], device.device),
          "cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)",
          plan_.launches[launch].kernel);
    limit.store(bytes, std::memory_order_release);
  }

  // Clusters of more than 8 blocks (up to 16 on Hopper) must be allowed per kernel and device.
  void allow_non_portable_cluster(const LoadedProgram& loaded, size_t launch,
                                  const DeviceInfo& device) const {
    std::atomic<bool>& allowed =
        cluster_allowed_[launch * kMaxDevices + static_cast<size_t>(device.ordinal)];
    if (allowed.load(std::memory_order_acquire)) [[likely]] {
      return;
    }
    std::lock_guard lock(attribute_mutex_);
    if (allowed.load(std::memory_order_relaxed)) {
      return;
    }
    check(loaded.api.cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1,
                                          loaded.kernels[launch], device.device),
          "cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED)",
          plan_.launches[launch].kernel);
    allowed.store(true, std::memory_order_release);
  }

  // The cubin or PTX, loaded at the first call: the artifact's own bytes, not a copy (a
  // TileLang GEMM's cubin is 140 KB: its copy took make_kernel of a disk hit from ~140 to
  // ~210 us on the CPU machine).
  const std::string& image_;
  std::string name_;
  ProgramPlan plan_;
  std::vector<std::string> symbols_;  // each launch's kernel name in the cubin
  std::vector<std::unique_ptr<TmaSlot>> tma_;
  mutable std::mutex load_mutex_;
  mutable std::unique_ptr<LoadedProgram> loaded_owner_;
  mutable std::atomic<const LoadedProgram*> loaded_{nullptr};
  std::unique_ptr<std::atomic<CUfunction>[]> functions_;  // [launch][device], null = not yet
  std::unique_ptr<std::atomic<int>[]> static_smem_;       // [launch][device], bytes
  std::unique_ptr<std::atomic<int>[]> smem_limit_set_;    // [launch][device], 0 = never raised
  std::unique_ptr<std::atomic<bool>[]> cluster_allowed_;  // [launch][device]
  mutable std::mutex attribute_mutex_;                    // serializes the rare attribute sets
};

class NvrtcBackend final : public Backend {
 public:
  std::string_view name() const override { return "nvrtc"; }
  int32_t device_type() const override { return dlpack::kDLCUDA; }

  Target resolve_target(const Target& requested) const override {
    if (requested.kind != "cuda" && requested.kind != "auto") {
      throw ArgumentError(
          fmt::format("the nvrtc backend compiles for CUDA targets, not '{}'", requested.str()));
    }
    bool auto_arch = requested.arch.empty() || requested.arch == "auto";
    bool auto_specific = requested.arch == "auto-a";
    if (!auto_arch && !auto_specific) {
      CudaArch::parse(requested.arch);  // validates
      return Target{"cuda", requested.arch};
    }
    std::string why;
    if (!driver_available(&why)) {
      throw NotAvailableError(fmt::format(
          "target '{}' asks for the current device's architecture, but {}; name one explicitly, "
          "e.g. target \"cuda -arch=sm_90a\"",
          requested.str(), why));
    }
    if (device_count() == 0) {
      throw NotAvailableError(
          "target 'auto' needs a CUDA device and none is present; name an architecture, e.g. "
          "\"cuda -arch=sm_90a\"");
    }
    // The current context's device when one is current (as frameworks set it), else device 0.
    const DriverApi& api = driver();
    CUcontext current = nullptr;
    CUdevice device = 0;
    if (api.cuCtxGetCurrent(&current) == CUDA_SUCCESS && current != nullptr) {
      api.cuCtxGetDevice(&device);
    }
    const DeviceInfo& info = device_info(device);
    CudaArch arch{info.cc_major, info.cc_minor, false};
    // The `a` variants exist from 9.0 on; a binary built for the device it runs on loses
    // nothing by using them.
    arch.arch_specific = auto_specific && info.cc_major >= 9;
    return Target{"cuda", arch.sm()};
  }

  std::string toolchain_fingerprint(const Target& target) const override {
    const NvrtcApi& api = nvrtc();
    std::string header_dirs;
    for (const auto& dir : cuda_include_dirs()) {
      header_dirs += dir.string() + ";";
    }
    return fmt::format("nvrtc {} max_arch {} target {} includes {} device_header {}",
                       api.version_string(), api.max_arch(), target.str(), header_dirs,
                       device_header_digest());
  }

  // The variables that choose the libnvrtc and the include dirs; the device header is part of
  // the tilejit binary, which every record lists. A libnvrtc already in this process is the
  // one dlopen returns whatever the variables say, and asking it costs little: no record.
  std::optional<std::string> toolchain_selector(const Target& /*target*/) const override {
    if (nvrtc_loaded()) return std::nullopt;
    std::string selector;
    for (const char* name : {"CUDA_HOME", "CUDA_PATH", "LD_LIBRARY_PATH"}) {
      const char* value = std::getenv(name);
      selector += fmt::format("{}={};", name, value != nullptr ? value : "(unset)");
    }
    return selector;
  }

  std::vector<std::string> toolchain_files(const Target& /*target*/) const override {
    return nvrtc_toolchain_files();
  }

  CompiledArtifact build(const Program& program, const ResolvedOptions& options) const override {
    if (program.language != Language::kCuda) {
      throw ArgumentError(fmt::format("the nvrtc backend compiles CUDA sources; program '{}' is {}",
                                      program.name, to_string(program.language)));
    }
    NvrtcOptions nvrtc_options;
    nvrtc_options.arch = CudaArch::parse(options.target.arch);
    nvrtc_options.source_name = program.name + ".cu";
    nvrtc_options.include_dirs = program.include_dirs;
    nvrtc_options.defines = program.defines;
    nvrtc_options.flags = options.compile_flags;
    nvrtc_options.verbose = options.verbose;
    const std::vector<std::filesystem::path> header_dirs = user_include_dirs(program, options);
    nvrtc_options.list_dependencies = !header_dirs.empty();
    refuse_relocatable_device_code(program, options.compile_flags);
    for (const Launch& launch : program.launches) {
      const std::vector<std::string>& names = nvrtc_options.name_expressions;
      if (needs_lowered_name(program, launch) &&
          std::find(names.begin(), names.end(), launch.kernel) == names.end()) {
        nvrtc_options.name_expressions.push_back(launch.kernel);
      }
    }
    // Header-heavy sources are the ones with user include dirs (TileLang's tl_templates, CUTLASS).
    if (!header_dirs.empty()) nvrtc_options.pch_dir = options.nvrtc_pch_dir;
    // The plan is rendered (and every kernel signature resolved) before compiling, so that a
    // malformed Program fails fast with a ProgramError rather than after a slow compile.
    std::string host_source = render_program_plan(program);
    NvrtcOutput out = options.compiler_placement == CompilerPlacement::kWorkerProcess
                          ? compile_cuda_in_worker(program.source, nvrtc_options)
                          : compile_cuda(program.source, nvrtc_options);

    CompiledArtifact artifact;
    artifact.backend = "nvrtc";
    artifact.target = options.target.str();
    artifact.program = program;
    artifact.program.out_idx = options.out_idx;
    artifact.binary_kind = out.binary_kind;
    artifact.binary = std::move(out.binary);
    artifact.host_source = std::move(host_source);
    artifact.device_source = program.source;
    artifact.metadata["nvrtc_version"] = nvrtc().version_string();
    artifact.metadata["arch"] = out.target;
    artifact.metadata["options"] = fmt::format("{}", fmt::join(out.options, " "));
    artifact.metadata["log"] = out.log;
    artifact.metadata["pch"] = out.pch;
    artifact.dependencies = headers_under(out.dependencies, header_dirs);
    for (size_t i = 0; i < out.lowered_names.size(); ++i) {
      artifact.metadata[lowered_name_key(nvrtc_options.name_expressions[i])] = out.lowered_names[i];
    }
    return artifact;
  }

  std::unique_ptr<Executor> load(const CompiledArtifact& artifact,
                                 const Binder& binder) const override {
    if (artifact.binary_kind != "cubin" && artifact.binary_kind != "ptx") {
      throw ArgumentError(
          fmt::format("the nvrtc backend loads cubin or ptx, not '{}'", artifact.binary_kind));
    }
    return std::make_unique<NvrtcExecutor>(artifact, binder);
  }
};

}  // namespace

std::string lowered_name_key(std::string_view kernel) {
  return fmt::format("lowered_name:{}", kernel);
}

const Backend& nvrtc_backend() {
  static const NvrtcBackend backend;
  return backend;
}

}  // namespace tilejit::detail
