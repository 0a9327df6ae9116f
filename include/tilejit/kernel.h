// tilejit/kernel.h — compile a Program, call the Kernel.
//
//   tilejit::Kernel k = tilejit::compile(program, {.out_idx = {-1}});
//   std::vector<tilejit::Tensor> outs = k({A, B}, stream);   // checks every argument first
//   std::cout << k.get_host_source();
//
// compile() resolves target and backend (explicit, else TILELANG_TARGET /
// TILELANG_EXECUTION_BACKEND, else "auto"), looks the kernel up in the memory and disk
// caches, builds it on a miss, and loads it. A Kernel is a cheap shared handle; calling it
// from several threads at once is safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tilejit/program.h"
#include "tilejit/tensor.h"

namespace tilejit {

// The seed's compile() options. Unset fields fall back to the environment, then to "auto".
struct CompileOptions {
  std::optional<std::vector<int>> out_idx;  // overrides Program::out_idx
  // "auto" | "nvrtc" | "nvcc" | "cpu" | "hip" | "metal", or one of the seed's names ("tvm_ffi",
  // "cython", "dlpack": the host-wrapper backend; "torch": metal); "" = env. docs/seed-compat.md
  std::string execution_backend;
  std::string target;  // "auto" | "cuda" | "cuda -arch=sm_90a" | "sm_90a" | "c" | ...
  // The seed's TVM host target: "" | "llvm" | "c", all meaning this machine (tilejit does not
  // cross-compile host code); anything else is an ArgumentError.
  std::string target_host;
  std::string host_compiler;    // compiler for generated host code ("" = CC/CXX, else c++)
  std::optional<bool> verbose;  // "" = TILELANG_VERBOSE
  std::map<std::string, std::string> pass_configs;  // recorded in the cache key
  std::vector<std::string> compile_flags;           // appended to the Program's own
  // The remote cache tier behind the disk cache (docs/cluster.md): "redis://host:port/db",
  // "off", or "" = TILEJIT_REMOTE_CACHE. Not part of the cache key.
  std::string remote_cache;

  friend bool operator==(const CompileOptions&, const CompileOptions&) = default;
};

// What a backend built: serializable, so the disk cache can store it and export() can hand
// it to a user. The seed's CompiledArtifact.
struct CompiledArtifact {
  // 2: dependencies; 3: nvrtc records the lowered (mangled) names of C++-named kernels, which
  // version-2 entries of such kernels lack; 4: compiler logs in files of their own (version 3,
  // with them inside artifact.json, is still read).
  static constexpr int kFormatVersion = 4;

  std::string backend;                          // "nvrtc", "nvcc", "cpu", ...
  std::string target;                           // canonical target text ("cuda -arch=sm_90a", "c")
  Program program;                              // with out_idx resolved
  std::string binary_kind;                      // "cubin" | "ptx" | "shared_library" | "none"
  std::string binary;                           // the bytes
  std::string host_source;                      // generated host code (the launch plan, for nvrtc)
  std::string device_source;                    // what the device compiler saw
  std::map<std::string, std::string> metadata;  // toolchain versions, options, compile log
  std::vector<std::string> dependencies;  // headers read from the user include dirs (absolute)

  // Writes/reads a directory: artifact.json, program.json, the binary and the sources.
  void save(const std::filesystem::path& dir) const;
  static CompiledArtifact load(const std::filesystem::path& dir);
};

// Allocates out_idx outputs; frameworks plug in their own allocator so outputs come back as
// their tensors. The default allocates with Tensor::empty.
class OutputAllocator {
 public:
  virtual ~OutputAllocator() = default;
  virtual Tensor allocate(DataType dtype, std::span<const int64_t> shape, Device device) const = 0;
  // The device index a call with no tensor argument runs and allocates on: the framework's
  // current device, where it has one.
  virtual int32_t default_device_id() const { return 0; }
};

// A module global of a loaded kernel: a `__constant__` or `__device__` variable of a CUDA
// module (a device address on `device`), or a global variable of a cpu kernel's library (a host
// address). Write it (cuMemcpyHtoD, torch's copy, memcpy) before the launches that read it.
// CuPy's RawModule.get_global.
struct GlobalSymbol {
  void* ptr = nullptr;
  size_t bytes = 0;  // the variable's size
  Device device;
};

namespace detail {
struct KernelState;
struct KernelAccess;  // the library's own way in (src/compile/kernel_state.h)
}  // namespace detail

class Kernel {
 public:
  Kernel() = default;

  // The seed adapter's from_database: a Kernel from a directory written by
  // CompiledArtifact::save (cache_key() is then empty) or a disk-cache entry
  // (<cache>/v1/<key[0:2]>/<key>, every file verified by its SHA-256; cache_key() is its key).
  // Nothing is compiled. A missing, incomplete or corrupted directory throws Error naming it.
  // Loading runs the directory's code: load only directories you trust.
  //
  //   kernel.artifact().save("saved/axpy");  ...  auto k = tilejit::Kernel::load("saved/axpy");
  static Kernel load(const std::filesystem::path& dir);

  // Checks the arguments (inputs only when out_idx is set), launches on `stream` and returns
  // the out_idx outputs. Throws ArgumentError before any launch when an argument is wrong.
  std::vector<Tensor> operator()(std::span<const Arg> args, StreamRef stream = {},
                                 const OutputAllocator* allocator = nullptr) const;
  std::vector<Tensor> operator()(std::initializer_list<Arg> args, StreamRef stream = {}) const {
    return (*this)(std::span<const Arg>(args.begin(), args.size()), stream);
  }

  const std::vector<KernelParam>& params() const;
  const std::vector<int>& out_idx() const;  // resolved, non-negative, ascending
  const Program& program() const;
  const CompiledArtifact& artifact() const;
  const std::string& cache_key() const;
  // The seed's accessors: device source (+ host source unless kernel_only), host, device.
  std::string get_kernel_source(bool kernel_only = false) const;
  const std::string& get_host_source() const;
  const std::string& get_device_source() const;
  // The module global `name` (its name in the binary: extern "C" or a file-scope variable),
  // on CUDA device `device_id` for CUDA backends. Throws ArgumentError naming it when the
  // module has none; NotAvailableError where CUDA is missing.
  GlobalSymbol get_global(std::string_view name, int device_id = 0) const;
  // Writes a self-contained library (shared library, C header, sources) usable with no
  // tilejit at run time. (The seed's export(); `export` is a C++ keyword.)
  void export_to(const std::filesystem::path& dir) const;

  explicit operator bool() const { return state_ != nullptr; }

 private:
  friend struct detail::KernelAccess;
  explicit Kernel(std::shared_ptr<const detail::KernelState> state) : state_(std::move(state)) {}

  std::shared_ptr<const detail::KernelState> state_;
};

Kernel compile(const Program& program, const CompileOptions& options = {});

// Compiles in parallel (num_workers <= 0: the CPUs this process may use; never more threads
// than Programs). Results are in input order. With ignore_error a failed Program yields an
// empty Kernel and its error is logged; otherwise the first error is rethrown after every
// compile has finished.
std::vector<Kernel> par_compile(std::span<const Program> programs,
                                const CompileOptions& options = {}, int num_workers = 0,
                                bool ignore_error = false);

}  // namespace tilejit
