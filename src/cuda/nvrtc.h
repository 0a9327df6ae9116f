// NVRTC, opened with dlopen on first use: CUDA C++ source to cubin (or PTX) in process.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cuda/driver_api.h"

namespace tilejit::cuda {

struct NvrtcApi {
  int major = 0;
  int minor = 0;
  std::string library_path;          // where libnvrtc was found
  std::vector<int> supported_archs;  // compute capabilities as 10 * major + minor, ascending
  PFN_nvrtcGetErrorString nvrtcGetErrorString = nullptr;
  PFN_nvrtcCreateProgram nvrtcCreateProgram = nullptr;
  PFN_nvrtcDestroyProgram nvrtcDestroyProgram = nullptr;
  PFN_nvrtcCompileProgram nvrtcCompileProgram = nullptr;
  PFN_nvrtcGetSize nvrtcGetProgramLogSize = nullptr;
  PFN_nvrtcGetBytes nvrtcGetProgramLog = nullptr;
  PFN_nvrtcGetSize nvrtcGetCUBINSize = nullptr;
  PFN_nvrtcGetBytes nvrtcGetCUBIN = nullptr;
  PFN_nvrtcGetSize nvrtcGetPTXSize = nullptr;
  PFN_nvrtcGetBytes nvrtcGetPTX = nullptr;
  PFN_nvrtcAddNameExpression nvrtcAddNameExpression = nullptr;
  PFN_nvrtcGetLoweredName nvrtcGetLoweredName = nullptr;
  // Precompiled headers (NVRTC 12.8+); null in older libraries, which then compile without.
  PFN_nvrtcGetPCHCreateStatus nvrtcGetPCHCreateStatus = nullptr;
  PFN_nvrtcGetSize nvrtcGetPCHHeapSizeRequired = nullptr;
  PFN_nvrtcSetPCHHeapSize nvrtcSetPCHHeapSize = nullptr;

  std::string version_string() const { return std::to_string(major) + "." + std::to_string(minor); }
  int max_arch() const { return supported_archs.empty() ? 0 : supported_archs.back(); }
};

// Loads libnvrtc once: $CUDA_HOME/lib64, $CUDA_PATH/lib64, then the loader's default search
// path, each with the sonames libnvrtc.so.13, .so.12 and libnvrtc.so. Throws NotAvailableError
// naming every place tried.
const NvrtcApi& nvrtc();
bool nvrtc_available(std::string* why = nullptr);

// The CUDA toolkit's include directories (include/ and include/cccl/ that exist), found from
// CUDA_HOME / CUDA_PATH, else next to the loaded libnvrtc; empty when none is found.
std::vector<std::filesystem::path> cuda_include_dirs();

// True when a libnvrtc is loaded in this process (by tilejit or by another library).
bool nvrtc_loaded();
// Every path whose state decides which libnvrtc nvrtc() loads and what cuda_include_dirs()
// returns: the loaded library, the candidates under CUDA_HOME / CUDA_PATH (absent ones too),
// the loader's cache and LD_LIBRARY_PATH directories, the include files probed. Loads NVRTC.
std::vector<std::string> nvrtc_toolchain_files();

// The source of include/tilejit/cuda_device.h that NVRTC sees as an in-memory header.
std::string_view device_header_source();
// A digest of device_header_source(), 16 hex digits, stable across processes and machines: the
// part of the nvrtc and nvcc toolchain fingerprints that changes with the header.
std::string device_header_digest();
inline constexpr const char* kDeviceHeaderName = "tilejit/cuda_device.h";

// A parsed CUDA architecture: sm_90a is {9, 0, true}.
struct CudaArch {
  int major = 0;
  int minor = 0;
  bool arch_specific = false;  // the `a` suffix: wgmma, setmaxnreg, TMA multicast

  // "sm_90a", "sm_80", "compute_90a"; throws ArgumentError naming the text.
  static CudaArch parse(std::string_view text);
  int number() const { return 10 * major + minor; }
  std::string sm() const;  // "sm_90a"
  friend bool operator==(const CudaArch&, const CudaArch&) = default;
};

struct NvrtcOptions {
  CudaArch arch;
  std::string source_name = "program.cu";
  std::vector<std::string> include_dirs;  // the user's, searched before the toolkit's
  std::map<std::string, std::string> defines;
  std::vector<std::string> flags;  // passed through after tilejit's own
  bool verbose = false;            // adds -lineinfo
  bool list_dependencies = false;  // fill NvrtcOutput::dependencies (costs a trace file)
  // C++ names of kernels (`my_sqrt<float>`, a kernel without extern "C") whose mangled names
  // NVRTC reports in NvrtcOutput::lowered_names, in this order.
  std::vector<std::string> name_expressions;
  // Where precompiled headers of this NVRTC instance go (nvrtc_pch.h); empty: none are used.
  std::string pch_dir;
};

struct NvrtcOutput {
  std::string binary;
  std::string binary_kind;  // "cubin", or "ptx" when NVRTC is older than the target arch
  std::string target;       // what NVRTC compiled for: "sm_90a" or "compute_90"
  std::vector<std::string> options;
  std::string log;
  std::vector<std::string> dependencies;   // headers NVRTC opened, when list_dependencies
  std::vector<std::string> lowered_names;  // one per NvrtcOptions::name_expressions
  std::string pch;  // "created <file>", "used <file>", or empty when no PCH took part
};

// The options compile_cuda() hands NVRTC (also recorded in the artifact's metadata).
std::vector<std::string> nvrtc_options(const NvrtcApi& api, const NvrtcOptions& options,
                                       std::string* target = nullptr);

// Compiles `source`. Throws CompileError carrying NVRTC's complete log, the options and the
// source name when NVRTC rejects it; NotAvailableError when NVRTC cannot be loaded.
NvrtcOutput compile_cuda(std::string_view source, const NvrtcOptions& options);

}  // namespace tilejit::cuda
