// Host-wrapper generation: the readable C/C++ host code that the cpu, nvcc and hip backends
// compile into one shared library with the Program's device code, and that export hands to
// users (the seed's TLCUDASourceWrapper, TLHIPSourceWrapper, TLCPUSourceWrapper and
// TLMetalSourceWrapper).
//
// Every generated host library exports (CONVENTIONS §3):
//
//   int init(void);                     // once per device, before the first call
//   const char* get_last_error(void);   // the calling thread's last error message
//   int call(<params in Program order>, <dynamic symbols>[, stream]);   // 0, or -1 on error
//   int call_packed(void* const* args, void* stream);   // args[i] points to call()'s i-th value
//
// Errors are kept in a thread-local buffer, so that two threads calling the same library see
// their own messages (the seed's global error_buf races).
//
//   for (const CallParam& p : wrapper_call_params(program)) ...   // what call() takes
//   std::string host = generate_cuda_wrapper(program, "kernel.cu");
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tilejit/dtype.h"
#include "tilejit/program.h"

namespace tilejit::detail {

// One parameter of the generated call(), in order: every Program param (tensors and
// scalars), then the dynamic symbols (Program::shape_variables() minus the names of scalar
// params). Generators and executors both build on this list, so they agree by construction.
struct CallParam {
  enum class Kind : uint8_t { kTensor, kScalar, kSymbol };

  Kind kind = Kind::kTensor;
  std::string name;
  int param_index = -1;  // index in Program::params; -1 for a symbol
  // Tensors: the element type. Scalars: the value type. Symbols: symbol_dtype(), the type of
  // the kernel parameters that receive it (int32 or int64).
  DataType dtype;
  // How call() declares it: "float*" for a float32 tensor, "int32_t", "void*" for a handle.
  // call_packed's args[i] points to a value of exactly this type.
  std::string c_type;
};

// Throws ProgramError when a name cannot appear in generated code (a C or C++ keyword, the
// reserved "tj_" prefix, "stream", or the name of a kernel).
std::vector<CallParam> wrapper_call_params(const Program& program);

// Which host API a generated library speaks: it decides the stream parameter of call().
enum class HostApi : uint8_t { kCpu, kCuda, kHip };

// A C header (usable from C and C++) declaring init, get_last_error, call with call()'s exact
// parameter list, and call_packed, with a comment on how to use them.
std::string generate_wrapper_header(const Program& program, HostApi api);

// C11 host code for a Program of language "c": prototypes of the Program's functions as its
// source declares them, and the entry points. It is compiled as its own translation unit and
// linked with the Program's source.
std::string generate_cpu_wrapper(const Program& program);

// The names under which the backends and export place the device source next to the host
// wrapper (which includes it for HIP, and embeds the cubin built from it for CUDA).
inline constexpr const char* kCudaDeviceSourceFile = "kernel.cu";
inline constexpr const char* kHipDeviceSourceFile = "kernel.hip";

// C++ host code for nvcc, holding no device code: nvcc builds `device_source_file` alone into
// a cubin, and the backend appends embed_cuda_device_image(cubin) to this text, so that one
// host-only translation unit carries the device code (nvcc's host pass never sees the device
// source and its headers). init() loads the cubin as a CUDA library and looks the launched
// kernels up by name: the launch's kernel name, or its symbol in `kernel_symbols` (the mangled
// name of a kernel without C linkage, which the backend reads from the cubin). Launches go through
// the driver's cuLaunchKernelEx (a cudaKernel_t is the driver's CUkernel) with the declared
// cluster, cooperative and PDL attributes; it and the TMA encoders (descriptors encoded once per
// call) are driver entry points resolved at run time (no -lcuda); L2 windows are clamped at run
// time.
std::string generate_cuda_wrapper(const Program& program, std::string_view device_source_file,
                                  std::map<std::string, std::string> kernel_symbols = {});

// The definition of the cubin that generate_cuda_wrapper's text declares: a C array, so that
// the wrapper source stays self-contained (export hands it out as one file).
std::string embed_cuda_device_image(std::string_view image, std::string_view device_source_file);

// C++ host code for hipcc, laid out like the CUDA wrapper. HIP has no TMA, clusters, L2
// windows or PDL: a Program that declares them is a ProgramError.
std::string generate_hip_wrapper(const Program& program, std::string_view device_source_file);

// Metal needs no host wrapper: the source passes through unchanged.
std::string generate_metal_wrapper(const Program& program);

}  // namespace tilejit::detail
